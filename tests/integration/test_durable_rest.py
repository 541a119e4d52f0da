"""The REST transport, by contract: the requests it sends to Supabase's REST API.

No Supabase runs here. A local HTTP server stands in for it, records each
request exactly as it arrives, and answers as PostgREST does. That the
database then keeps the newest version of a row is the table's trigger's
job, tested in test_migrations.
"""

from __future__ import annotations

import http.server
import json
import threading
from collections.abc import Iterator
from dataclasses import dataclass, field
from email.message import Message
from urllib.parse import parse_qs, urlsplit

import pytest

from vidqueue import services
from vidqueue.context import Context
from vidqueue.durable.outbox import OutboxPump
from vidqueue.durable.rest import PAGE_ROWS, SupabaseRestSink
from vidqueue.errors import DatabaseUnavailable, RecordRejected
from vidqueue.records import JobRecord, new_job_id

pytestmark = pytest.mark.integration

SERVICE_KEY = "service-role-key-for-tests"


@dataclass
class Request:
    """One request as the stand-in server received it."""

    method: str
    path: str
    query: dict[str, list[str]]
    headers: Message
    """Looked up regardless of case, as HTTP headers are."""
    body: object


@dataclass
class FakeSupabase:
    """What the stand-in answers, and what it was sent."""

    url: str
    requests: list[Request] = field(default_factory=list)
    status: int = 201
    answer: object = None
    rows: list[dict] = field(default_factory=list)


@pytest.fixture
def supabase() -> Iterator[FakeSupabase]:
    port = services.free_port()
    fake = FakeSupabase(url=f"http://127.0.0.1:{port}")

    class Handler(http.server.BaseHTTPRequestHandler):
        def do_POST(self) -> None:
            self._record(
                json.loads(self.rfile.read(int(self.headers["Content-Length"])))
            )
            self._send(fake.status, fake.answer)

        def do_GET(self) -> None:
            request = self._record(None)
            offset = int(request.query.get("offset", ["0"])[0])
            limit = int(request.query.get("limit", [str(len(fake.rows))])[0])
            self._send(200, fake.rows[offset : offset + limit])

        def _record(self, body: object) -> Request:
            parts = urlsplit(self.path)
            request = Request(
                self.command, parts.path, parse_qs(parts.query), self.headers, body
            )
            fake.requests.append(request)
            return request

        def _send(self, status: int, answer: object) -> None:
            payload = b"" if answer is None else json.dumps(answer).encode()
            self.send_response(status)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(payload)))
            self.end_headers()
            self.wfile.write(payload)

        def log_message(self, *args) -> None:
            pass

    server = http.server.ThreadingHTTPServer(("127.0.0.1", port), Handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield fake
    server.shutdown()
    server.server_close()


@pytest.fixture
def sink(supabase: FakeSupabase) -> Iterator[SupabaseRestSink]:
    sink = SupabaseRestSink(supabase.url, SERVICE_KEY)
    yield sink
    sink.close()


def row_of(job_id: str, **values) -> dict:
    """A row as PostgREST returns it (timestamps in Postgres's JSON form)."""
    return {
        "id": job_id, "user_id": "u1", "state": "waiting", "progress": 0,
        "stage": None, "source_bucket": "b", "source_key": "k", "filename": "a.mp4",
        "content_type": "video/mp4", "size_bytes": 10, "profile": "default",
        "result": None, "failed_reason": None, "attempts": 0, "version": 3,
        "created_at": "2026-01-02T03:04:05.678+00:00",
        "updated_at": "2026-01-02T03:04:06.5+00:00",
        "started_at": None, "finished_at": None, "upload_expires_at": None,
        **values,
    }  # fmt: skip


def test_upsert_is_a_merge_duplicates_post_on_the_job_id(supabase, sink):
    record = JobRecord(id=new_job_id(), user_id="u1", state="active", progress=40)
    record.version = 7

    sink.upsert([record])

    (request,) = supabase.requests
    assert (request.method, request.path) == ("POST", "/rest/v1/videos")
    assert request.query["on_conflict"] == ["id"]
    prefer = request.headers["Prefer"].split(",")
    assert "resolution=merge-duplicates" in prefer
    assert "return=minimal" in prefer
    assert request.headers["apikey"] == SERVICE_KEY
    assert request.headers["Authorization"] == f"Bearer {SERVICE_KEY}"
    assert request.headers["Content-Type"].startswith("application/json")
    (row,) = request.body
    assert (row["id"], row["state"], row["progress"], row["version"]) == (
        record.id, "active", 40, 7,
    )  # fmt: skip
    assert row["finished_at"] is None
    assert row["failed_reason"] is None
    assert row["created_at"] == record.created_at


def test_fetch_reads_one_row_by_id(supabase, sink):
    job_id = new_job_id()
    supabase.rows = [row_of(job_id, result={"width": 640})]

    record = sink.fetch(job_id)

    (request,) = supabase.requests
    assert (request.method, request.path) == ("GET", "/rest/v1/videos")
    assert request.query["id"] == [f"eq.{job_id}"]
    assert request.headers["apikey"] == SERVICE_KEY
    assert (record.id, record.state, record.version) == (job_id, "waiting", 3)
    assert record.result == {"width": 640}
    assert record.created_at == "2026-01-02T03:04:05.678Z"
    assert record.updated_at == "2026-01-02T03:04:06.500Z"
    assert (record.stage, record.finished_at) == ("", "")


def test_unfinished_jobs_are_read_page_by_page(supabase, sink):
    supabase.rows = [row_of(f"job-{n:05}") for n in range(PAGE_ROWS + 1)]

    records = sink.unfinished()

    assert [r.id for r in records] == [row["id"] for row in supabase.rows]
    first, second = supabase.requests
    assert first.query["state"] == ["in.(uploading,waiting,active)"]
    assert (first.query["offset"], second.query["offset"]) == (["0"], [str(PAGE_ROWS)])


def test_server_errors_mean_unavailable_and_bad_values_mean_rejected(supabase, sink):
    record = JobRecord(id=new_job_id(), user_id="u1")

    supabase.status, supabase.answer = 503, {"message": "upstream down"}
    with pytest.raises(DatabaseUnavailable):
        sink.upsert([record])

    supabase.status = 400
    supabase.answer = {"code": "23514", "message": "violates check constraint"}
    with pytest.raises(RecordRejected):
        sink.upsert([record])


def test_an_unreachable_api_means_unavailable():
    sink = SupabaseRestSink(f"http://127.0.0.1:{services.free_port()}", SERVICE_KEY)
    try:
        with pytest.raises(DatabaseUnavailable):
            sink.fetch(new_job_id())
    finally:
        sink.close()


def test_the_pump_writes_the_outbox_over_rest(supabase, settings):
    ctx = Context(
        settings.replace(supabase_url=supabase.url, supabase_service_key=SERVICE_KEY)
    )
    record = JobRecord(id=new_job_id(), user_id="u1")
    ctx.records.create(record)
    ctx.records.transition(record.id, "waiting", ("uploading",), stage="queued")
    try:
        assert OutboxPump(ctx.redis, ctx.durable).drain() == 2
    finally:
        ctx.durable.close()

    (request,) = supabase.requests
    (row,) = request.body
    assert (row["id"], row["state"], row["stage"], row["version"]) == (
        record.id, "waiting", "queued", 1,
    )  # fmt: skip
