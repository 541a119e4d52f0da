"""The status sink over Supabase's REST API (PostgREST, through supabase-py).

For servers that may only speak HTTPS to Supabase. It authenticates with the
project's service key, which bypasses row-level security, so keep that key on
servers only. Writes are PostgREST upserts (`POST /rest/v1/videos?on_conflict=id`
with `Prefer: resolution=merge-duplicates`); PostgREST cannot make them
conditional, so the table's trigger `videos_keep_newest` (migration 0002)
keeps a newer row from being overwritten by an older version.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import httpx
from postgrest import APIError, APIResponse, SyncRequestBuilder
from postgrest.types import ReturnMethod
from supabase import ClientOptions, create_client

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

PAGE_ROWS = 1000
"""Rows per request when reading many: Supabase answers at most 1000 by default."""


class SupabaseRestSink(StatusSink):
    """The `videos` table through a Supabase project's REST API."""

    name = "supabase-rest"

    def __init__(
        self,
        supabase_url: str,
        service_key: str,
        timeout_s: float = defaults.DATABASE_TIMEOUT_SECONDS,
    ):
        self.http = httpx.Client(timeout=timeout_s)
        options = ClientOptions(
            httpx_client=self.http,
            # The outbox pump retries with its own backoff; a status read
            # should fail fast rather than wait out retries.
            postgrest_client_retry=False,
            auto_refresh_token=False,
            persist_session=False,
        )
        self.client = create_client(supabase_url, service_key, options)

    def upsert(self, records: Sequence[JobRecord]) -> int:
        """Send the records as one upsert; the table's trigger keeps newer rows."""
        if not records:
            return 0
        rows = [to_row(record) for record in records]
        request = self._table().upsert(
            rows, on_conflict="id", returning=ReturnMethod.minimal
        )
        self._send("upsert", request)
        return len(rows)

    def fetch(self, job_id: str) -> JobRecord | None:
        """The job's row, or None."""
        answer = self._send("fetch", self._table().select("*").eq("id", job_id))
        return from_row(answer.data[0]) if answer.data else None

    def unfinished(self) -> list[JobRecord]:
        """Rows still uploading, waiting or active, oldest first, page by page."""
        records: list[JobRecord] = []
        while True:
            start = len(records)
            request = (
                self._table()
                .select("*")
                .in_("state", list(UNFINISHED_STATES))
                .order("created_at")
                .order("id")
                .range(start, start + PAGE_ROWS - 1)
            )
            rows = self._send("unfinished", request).data
            records += [from_row(row) for row in rows]
            if len(rows) < PAGE_ROWS:
                return records

    def close(self) -> None:
        """Close the HTTP connections."""
        self.http.close()

    def _table(self) -> SyncRequestBuilder:
        return self.client.table(TABLE)

    def _send(self, what: str, request: Any) -> APIResponse:
        try:
            return request.execute()
        except httpx.HTTPError as exc:
            raise DatabaseUnavailable(f"{what}: {exc}") from exc
        except APIError as exc:
            # SQLSTATE classes 22 (data exception) and 23 (integrity): the
            # values are wrong. Anything else (PGRST*, 5xx, auth) may pass.
            code = str(exc.code or "")
            if code[:2] in ("22", "23"):
                raise RecordRejected(f"{what}: {exc.message}") from exc
            raise DatabaseUnavailable(f"{what}: {code} {exc.message}") from exc
