"""The status sink: where job records are kept for good (the `videos` table).

One interface, two transports: `PostgresSink` talks SQL to the database
(`VIDQUEUE_DATABASE_URL`, a Supabase connection string works) and
`SupabaseRestSink` goes through Supabase's REST API (`VIDQUEUE_SUPABASE_URL`
and `VIDQUEUE_SUPABASE_SERVICE_KEY`). When both are configured, the direct
connection wins: it is faster and its upsert carries its own condition.
"""

from __future__ import annotations

import abc
from collections.abc import Mapping, Sequence
from datetime import datetime
from typing import Any

from vidqueue import defaults
from vidqueue.errors import ConfigError
from vidqueue.records import JobRecord, utc_iso
from vidqueue.settings import Settings

TABLE = defaults.DATABASE_TABLE
UNFINISHED_STATES = ("uploading", "waiting", "active")
PROBE_JOB_ID = "0" * 26
"""A job id that no job has (its time part is 1970): reading it costs nothing."""

TIMESTAMP_FIELDS = frozenset(
    {"created_at", "updated_at", "started_at", "finished_at", "upload_expires_at"}
)
NULLABLE_TEXT_FIELDS = frozenset({"stage", "failed_reason", "callback_url"})
"""Empty in Redis, NULL in the table."""


class StatusSink(abc.ABC):
    """The durable record of jobs, one row per job keyed by its id.

    Writes are upserts, and ordered: a record whose `version` is older than
    the row's changes nothing, so a late progress report never overwrites a
    final state, whatever order writes arrive in. Every method raises
    `DatabaseUnavailable` when the database cannot be reached (try again
    later) and `upsert` raises `RecordRejected` when the database refuses the
    values themselves (trying again will not help).
    """

    name = "sink"

    @abc.abstractmethod
    def upsert(self, records: Sequence[JobRecord]) -> int:
        """Write each record unless its row is newer; returns the rows sent.

        The ids of `records` must be distinct (one statement cannot change a
        row twice).
        """

    @abc.abstractmethod
    def fetch(self, job_id: str) -> JobRecord | None:
        """The job's row as a record, or None when the table has none."""

    @abc.abstractmethod
    def unfinished(self) -> list[JobRecord]:
        """Every job still `uploading`, `waiting` or `active`, oldest first."""

    def check(self) -> None:
        """Raise `DatabaseUnavailable` unless the table answers a read."""
        self.fetch(PROBE_JOB_ID)

    def close(self) -> None:  # noqa: B027 - transports without resources keep it
        """Release connections; the sink is not used afterwards."""


def durable_configured(settings: Settings) -> bool:
    """True when the settings name a database for the durable record."""
    return bool(
        settings.database_url
        or (settings.supabase_url and settings.supabase_service_key)
    )


def open_sink(settings: Settings) -> StatusSink | None:
    """The sink the settings name, or None when they name no database.

    Opening costs nothing and never waits for the database: connections are
    made on first use, so a process starts while the database is down.
    """
    if settings.database_url:
        from vidqueue.durable.postgres import PostgresSink

        return PostgresSink(settings.database_url)
    if settings.supabase_url or settings.supabase_service_key:
        if not (settings.supabase_url and settings.supabase_service_key):
            raise ConfigError(
                "VIDQUEUE_SUPABASE_URL and VIDQUEUE_SUPABASE_SERVICE_KEY "
                "must be set together"
            )
        from vidqueue.durable.rest import SupabaseRestSink

        return SupabaseRestSink(settings.supabase_url, settings.supabase_service_key)
    return None


def to_row(record: JobRecord) -> dict[str, Any]:
    """The record as a row of the table, in JSON types (NULL for empty values)."""
    row = record.to_redis()
    for name in TIMESTAMP_FIELDS | NULLABLE_TEXT_FIELDS:
        row[name] = row[name] or None
    for name in ("progress", "size_bytes", "attempts", "version"):
        row[name] = int(row[name] or 0)
    row["result"] = record.result
    return row


def from_row(row: Mapping[str, Any]) -> JobRecord:
    """Rebuild a record from a row (from psycopg or from the REST API)."""
    values = {}
    for name, value in row.items():
        if name in TIMESTAMP_FIELDS:
            values[name] = _iso(value)
        elif name == "result":
            values[name] = value
        elif value is None:
            values[name] = ""
        else:
            values[name] = value
    known = JobRecord.__dataclass_fields__
    return JobRecord(**{k: v for k, v in values.items() if k in known})


def _iso(value: datetime | str | None) -> str:
    """A timestamp as the records write it: UTC, milliseconds, `Z`."""
    if value is None or value == "":
        return ""
    moment = value if isinstance(value, datetime) else datetime.fromisoformat(value)
    return utc_iso(moment)
