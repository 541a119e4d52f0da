"""`vidqueue migrate`: the SQL migrations of the durable record, each applied once.

The migrations are the files `infra/supabase/migrations/NNNN_name.sql` of the
source tree (vidqueue is installed from it, editable), applied in the order of
their names, each in its own transaction, and written down in the table
`vidqueue.schema_migrations` so that the next run skips them. The files are
idempotent as well, so applying one twice does no harm.

On a plain Postgres, which lacks Supabase's `auth` schema, the compatibility
layer `infra/supabase/local/supabase_compat.sql` goes first: the roles `anon`,
`authenticated` and `service_role` and the functions `auth.uid()`,
`auth.role()` and `auth.jwt()`, so the same policies run locally and in tests.
"""

from __future__ import annotations

import hashlib
import logging
from dataclasses import dataclass
from pathlib import Path

import psycopg

from vidqueue import defaults
from vidqueue.errors import ConfigError, DatabaseUnavailable, MigrationFailed

logger = logging.getLogger("vidqueue.migrate")

SUPABASE_DIR = Path(__file__).resolve().parents[1] / "infra" / "supabase"
MIGRATIONS_DIR = SUPABASE_DIR / "migrations"
COMPAT_FILE = SUPABASE_DIR / "local" / "supabase_compat.sql"
COMPAT_MARK = "vidqueue: local stand-in for Supabase auth"
"""The comment that the compatibility layer puts on its `auth` schema."""

# Any constant works; it keeps two `vidqueue migrate` runs from interleaving.
_LOCK_ID = 0x76696471

_BOOKKEEPING = """
create schema if not exists vidqueue;
create table if not exists vidqueue.schema_migrations (
  name text primary key,
  checksum text not null,
  applied_at timestamptz not null default now()
);
revoke all on schema vidqueue from public;
"""


@dataclass(frozen=True)
class Migration:
    """One SQL file of the migrations folder."""

    name: str
    sql: str

    @property
    def checksum(self) -> str:
        """SHA-256 of the file's text, to notice a file changed after it ran."""
        return hashlib.sha256(self.sql.encode()).hexdigest()


def load_migrations(folder: Path = MIGRATIONS_DIR) -> list[Migration]:
    """The migrations of `folder`, in the order they apply."""
    if not folder.is_dir():
        raise ConfigError(
            f"no migrations folder at {folder}: run vidqueue from its source tree "
            "(pip install -e .) or pass --dir"
        )
    files = sorted(folder.glob("[0-9][0-9][0-9][0-9]_*.sql"))
    return [Migration(path.stem, path.read_text()) for path in files]


def migrate(database_url: str, folder: Path = MIGRATIONS_DIR) -> list[str]:
    """Apply the migrations that have not run yet; returns their names.

    Raises `DatabaseUnavailable` when the database cannot be reached and
    `MigrationFailed` naming the file whose SQL failed (nothing of that file
    is kept; the files before it stay applied).
    """
    migrations = load_migrations(folder)
    try:
        conn = psycopg.connect(
            database_url,
            autocommit=True,
            connect_timeout=int(defaults.DATABASE_TIMEOUT_SECONDS),
        )
    except psycopg.OperationalError as exc:
        raise DatabaseUnavailable(f"cannot reach the database: {exc}") from exc

    with conn:
        conn.execute("select pg_advisory_lock(%s)", (_LOCK_ID,))
        try:
            return _apply_all(conn, migrations)
        finally:
            conn.execute("select pg_advisory_unlock(%s)", (_LOCK_ID,))


def _apply_all(conn: psycopg.Connection, migrations: list[Migration]) -> list[str]:
    if _needs_compat(conn):
        _apply(conn, "supabase_compat", COMPAT_FILE.read_text())
        logger.info("installed the local stand-in for Supabase's auth schema")
    _apply(conn, "bookkeeping", _BOOKKEEPING)

    done = dict(
        conn.execute("select name, checksum from vidqueue.schema_migrations").fetchall()
    )
    applied = []
    for migration in migrations:
        if migration.name in done:
            if done[migration.name] != migration.checksum:
                logger.warning(
                    "migration %s changed after it was applied; not applied again",
                    migration.name,
                )
            continue
        _apply(conn, migration.name, migration.sql, migration.checksum)
        logger.info("applied migration %s", migration.name)
        applied.append(migration.name)
    return applied


def _needs_compat(conn: psycopg.Connection) -> bool:
    row = conn.execute(
        "select obj_description(oid, 'pg_namespace') from pg_namespace"
        " where nspname = 'auth'"
    ).fetchone()
    return row is None or row[0] == COMPAT_MARK


def _apply(
    conn: psycopg.Connection, name: str, sql: str, checksum: str | None = None
) -> None:
    try:
        with conn.transaction():
            conn.execute(sql)
            if checksum is not None:
                conn.execute(
                    "insert into vidqueue.schema_migrations (name, checksum)"
                    " values (%s, %s)",
                    (name, checksum),
                )
    except psycopg.OperationalError as exc:
        raise DatabaseUnavailable(f"{name}: {exc}") from exc
    except psycopg.Error as exc:
        raise MigrationFailed(f"{name}: {exc}") from exc
