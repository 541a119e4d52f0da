"""The status sink over a direct Postgres connection (psycopg 3 with a pool).

Any libpq connection string works, Supabase's included: its options
(`sslmode=require` and the rest) pass through untouched. Statements are never
prepared on the server, so Supabase's transaction pooler (port 6543, which
hands each transaction to any server connection) works as well as a direct
connection.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import fields

import psycopg
from psycopg import sql
from psycopg.rows import dict_row
from psycopg.types.json import Jsonb
from psycopg_pool import ConnectionPool

from vidqueue import defaults
from vidqueue.durable.sink import (
    TABLE,
    UNFINISHED_STATES,
    StatusSink,
    from_row,
    to_row,
)
from vidqueue.errors import DatabaseUnavailable, RecordRejected
from vidqueue.records import JobRecord

COLUMNS = tuple(f.name for f in fields(JobRecord))


def _upsert_statement() -> sql.Composed:
    table = sql.Identifier("public", TABLE)
    columns = sql.SQL(", ").join(map(sql.Identifier, COLUMNS))
    updates = sql.SQL(", ").join(
        sql.SQL("{0} = excluded.{0}").format(sql.Identifier(name))
        for name in COLUMNS
        if name != "id"
    )
    # One statement for the whole batch: the rows travel as one JSON array.
    return sql.SQL(
        "insert into {table} as row ({columns})"
        " select {columns} from jsonb_populate_recordset(null::{table}, %s)"
        " on conflict (id) do update set {updates}"
        " where row.version < excluded.version"
    ).format(table=table, columns=columns, updates=updates)


class PostgresSink(StatusSink):
    """The `videos` table over a pool of Postgres connections.

    The pool opens in the background and reconnects on its own, so the sink
    can be built while the database is down; calls then raise
    `DatabaseUnavailable` after `timeout_s`.
    """

    name = "postgres"

    def __init__(
        self,
        database_url: str,
        pool_size: int = defaults.DATABASE_POOL_SIZE,
        timeout_s: float = defaults.DATABASE_TIMEOUT_SECONDS,
    ):
        self.pool = ConnectionPool(
            database_url,
            min_size=1,
            max_size=pool_size,
            open=False,
            timeout=timeout_s,
            # Give up reconnecting in the background soon: the next call then
            # starts a fresh attempt at once, instead of waiting out a backoff
            # that grew during a long outage.
            reconnect_timeout=timeout_s,
            check=ConnectionPool.check_connection,
            kwargs={
                "autocommit": True,
                "prepare_threshold": None,
                "connect_timeout": max(1, int(timeout_s)),
                "row_factory": dict_row,
            },
            name="vidqueue-durable",
        )
        self.pool.open(wait=False)
        self._upsert = _upsert_statement()

    def upsert(self, records: Sequence[JobRecord]) -> int:
        """Write the records in one statement; a newer row is left as it is."""
        if not records:
            return 0
        rows = Jsonb([to_row(record) for record in records])
        with self._call("upsert") as conn:
            conn.execute(self._upsert, (rows,))
        return len(records)

    def fetch(self, job_id: str) -> JobRecord | None:
        """The job's row, or None."""
        query = sql.SQL("select * from {} where id = %s").format(
            sql.Identifier("public", TABLE)
        )
        with self._call("fetch") as conn:
            row = conn.execute(query, (job_id,)).fetchone()
        return None if row is None else from_row(row)

    def unfinished(self) -> list[JobRecord]:
        """Rows still uploading, waiting or active, oldest first."""
        query = sql.SQL(
            "select * from {} where state = any(%s) order by created_at"
        ).format(sql.Identifier("public", TABLE))
        with self._call("unfinished") as conn:
            rows = conn.execute(query, (list(UNFINISHED_STATES),)).fetchall()
        return [from_row(row) for row in rows]

    def close(self) -> None:
        """Close the pool's connections."""
        self.pool.close()

    @contextmanager
    def _call(self, what: str) -> Iterator[psycopg.Connection]:
        try:
            with self.pool.connection() as conn:
                yield conn
        except (psycopg.DataError, psycopg.IntegrityError) as exc:
            raise RecordRejected(f"{what}: {exc}") from exc
        except psycopg.Error as exc:
            raise DatabaseUnavailable(f"{what}: {exc}") from exc
