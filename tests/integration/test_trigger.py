"""Every way an upload announces itself ends in exactly one job."""

from __future__ import annotations

import http.server
import json
import threading
import time
from urllib.parse import quote_plus

import pytest
from litestar.testing import TestClient

from api.app import create_app
from handlers.inbox import scan_inbox
from handlers.minio_events import start_listener
from handlers.poller import Poller, check_interval, poll_once
from handlers.trigger import Outcome, handle
from vidqueue import defaults
from vidqueue.context import Context
from vidqueue.keys import upload_key
from vidqueue.records import JobRecord, new_job_id

pytestmark = pytest.mark.integration


def pending_upload(
    ctx: Context, path, user: str = "u1", store: bool = True
) -> JobRecord:
    """A job in `uploading` whose object is (or is not yet) in storage."""
    job_id = new_job_id()
    record = JobRecord(
        id=job_id, user_id=user,
        source_bucket=ctx.storage.upload_bucket,
        source_key=upload_key(user, job_id, path.name),
        filename=path.name, content_type="video/mp4",
        size_bytes=path.stat().st_size,
        upload_expires_at="2999-01-01T00:00:00Z",
    )  # fmt: skip
    ctx.records.create(record)
    if store:
        ctx.storage.client.upload_file(
            str(path), record.source_bucket, record.source_key
        )
    return record


def s3_event(
    bucket: str,
    key: str,
    size: int,
    etag: str = "abc",
    name: str = "s3:ObjectCreated:Put",
) -> dict:
    """An S3 event notification as MinIO and AWS send it (key URL-encoded)."""
    return {
        "Records": [{
            "eventVersion": "2.0", "eventSource": "minio:s3", "eventName": name,
            "s3": {
                "bucket": {"name": bucket},
                "object": {"key": quote_plus(key), "size": size, "eTag": etag},
            },
        }]
    }  # fmt: skip


def jobs_enqueued(ctx: Context) -> int:
    return len(ctx.queue) + ctx.queue.started_job_registry.count


def test_event_moves_its_upload_to_waiting_once(ctx, clip):
    record = pending_upload(ctx, clip)
    event = s3_event(record.source_bucket, record.source_key, record.size_bytes)

    assert handle(event, ctx) == [Outcome.ENQUEUED]
    assert handle(event, ctx) == [Outcome.DUPLICATE]
    assert ctx.records.get(record.id).state == "waiting"
    assert jobs_enqueued(ctx) == 1


@pytest.mark.parametrize(
    ("bucket", "key", "name"),
    [
        ("other-bucket", None, "s3:ObjectCreated:Put"),
        (None, "elsewhere/clip.mp4", "s3:ObjectCreated:Put"),
        (None, "u/u1/{job}/../../clip.mp4", "s3:ObjectCreated:Put"),
        (None, "u/u1/{job}/another-name.mp4", "s3:ObjectCreated:Put"),
        (None, None, "s3:ObjectRemoved:Delete"),
    ],
)
def test_events_about_other_things_are_ignored(ctx, clip, caplog, bucket, key, name):
    record = pending_upload(ctx, clip)
    key = (key or record.source_key).format(job=record.id)
    event = s3_event(bucket or record.source_bucket, key, record.size_bytes, name=name)

    assert handle(event, ctx) == [Outcome.IGNORED]
    assert ctx.records.get(record.id).state == "uploading"


def test_malformed_events_are_ignored(ctx):
    assert handle({"Records": [{"eventName": "s3:ObjectCreated:Put"}]}, ctx) == [
        Outcome.IGNORED
    ]
    assert handle({"nothing": 1}, ctx) == []


def test_three_paths_at_once_make_one_job(ctx, clip, api):
    record = pending_upload(ctx, clip, user="local")
    event = s3_event(record.source_bucket, record.source_key, record.size_bytes)
    barrier = threading.Barrier(3)
    outcomes = []

    def complete_call():
        barrier.wait()
        outcomes.append(api.post(f"/uploads/{record.id}/complete").status_code)

    def webhook():
        barrier.wait()
        outcomes.extend(handle(event, ctx))

    def poller():
        barrier.wait()
        outcomes.extend(k for k, n in poll_once(ctx).items() for _ in range(n))

    threads = [threading.Thread(target=f) for f in (complete_call, webhook, poller)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()

    assert outcomes.count(Outcome.ENQUEUED) <= 1
    assert jobs_enqueued(ctx) == 1
    assert ctx.records.counts()["waiting"] == 1


def test_two_pollers_at_once_make_one_job_each(ctx, clip):
    records = [pending_upload(ctx, clip) for _ in range(20)]
    first, second = Poller(ctx), Poller(ctx)
    results = []
    threads = [
        threading.Thread(target=lambda p=p: results.append(p.poll_once()))
        for p in (first, second)
    ]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()

    enqueued = sum(r[Outcome.ENQUEUED] for r in results)
    assert enqueued == len(records)
    assert jobs_enqueued(ctx) == len(records)


def test_event_replayed_after_the_job_completed_changes_nothing(ctx, clip, run_worker):
    record = pending_upload(ctx, clip)
    event = s3_event(record.source_bucket, record.source_key, record.size_bytes)
    handle(event, ctx)
    run_worker()
    before = ctx.records.get(record.id)

    assert handle(event, ctx) == [Outcome.DUPLICATE]

    after = ctx.records.get(record.id)
    assert (after.state, after.version) == ("completed", before.version)
    assert jobs_enqueued(ctx) == 0


def test_upload_that_never_arrives_fails_after_expiry(ctx, clip):
    record = pending_upload(ctx, clip, store=False)
    ctx.records.update(record.id, upload_expires_at="2000-01-01T00:00:00Z")

    assert poll_once(ctx)[Outcome.EXPIRED] == 1

    failed = ctx.records.get(record.id)
    assert (failed.state, failed.failed_reason) == ("failed", "upload never arrived")
    assert ctx.records.pending_uploads() == []


def test_old_pending_uploads_are_checked_less_often(ctx, clip):
    pending_upload(ctx, clip, store=False)
    poller = Poller(ctx)
    now = time.time()

    assert poller.poll_once(now)[Outcome.NOT_ARRIVED] == 1
    assert poller.poll_once(now + 0.1)[Outcome.NOT_ARRIVED] == 0
    assert poller.poll_once(now + 5)[Outcome.NOT_ARRIVED] == 1


def test_check_interval_grows_with_age_up_to_a_limit():
    assert check_interval(5, 2) == 2
    assert check_interval(120, 2) == 12
    assert check_interval(86_400, 2) == defaults.POLL_MAX_INTERVAL_SECONDS


INBOX_KEYS = [
    "inbox/plain.mp4",
    "inbox/with space and+plus.mp4",
    "inbox/100% real.mp4",
    "inbox/vidéo 日本.mp4",
    "inbox/../escape/a.mp4",
    "inbox/deep/er/clip.mp4",
]


def test_inbox_makes_one_job_per_object_version(ctx, clip, run_worker):
    bucket = ctx.storage.upload_bucket
    for key in INBOX_KEYS:
        ctx.storage.client.upload_file(str(clip), bucket, key)

    first = scan_inbox(ctx)
    again = scan_inbox(ctx)
    run_worker()

    assert first[Outcome.ENQUEUED] == len(INBOX_KEYS)
    assert again[Outcome.DUPLICATE] == len(INBOX_KEYS)
    assert ctx.records.counts()["completed"] == len(INBOX_KEYS)
    jobs = [ctx.records.get(j) for j in ctx.records.user_jobs("inbox", limit=50)]
    assert sorted(j.source_key for j in jobs) == sorted(INBOX_KEYS)

    ctx.storage.client.put_object(
        Bucket=bucket, Key=INBOX_KEYS[0], Body=clip.read_bytes()[:-1]
    )
    assert scan_inbox(ctx)[Outcome.ENQUEUED] == 1


def test_inbox_event_and_listing_share_one_job(ctx, clip):
    bucket = ctx.storage.upload_bucket
    key = "inbox/both ways.mp4"
    ctx.storage.client.upload_file(str(clip), bucket, key)
    etag = ctx.storage.head(bucket, key).etag

    handle(s3_event(bucket, key, clip.stat().st_size, etag=etag), ctx)
    scan_inbox(ctx)

    assert jobs_enqueued(ctx) == 1


def test_inbox_forgets_objects_that_left(ctx, clip):
    bucket = ctx.storage.upload_bucket
    keys = [f"inbox/gone-{i}.mp4" for i in range(5)]
    for key in keys:
        ctx.storage.client.upload_file(str(clip), bucket, key)
    scan_inbox(ctx)
    for key in keys:
        ctx.storage.client.delete_object(Bucket=bucket, Key=key)

    scan_inbox(ctx)

    assert ctx.redis.hlen(defaults.INBOX_SEEN_KEY) == 0


@pytest.fixture
def hook_client(settings):
    ctx = Context(settings.replace(hook_secret="hook-secret"))
    with TestClient(create_app(ctx)) as client:
        yield client


def test_storage_hook_needs_the_secret(hook_client, ctx, clip):
    record = pending_upload(ctx, clip)
    event = s3_event(record.source_bucket, record.source_key, record.size_bytes)

    missing = hook_client.post("/hooks/storage", json=event)
    wrong = hook_client.post(
        "/hooks/storage", json=event, headers={"Authorization": "Bearer nope"}
    )
    right = hook_client.post(
        "/hooks/storage", json=event, headers={"Authorization": "Bearer hook-secret"}
    )

    assert (missing.status_code, wrong.status_code) == (401, 401)
    assert right.status_code == 200
    assert right.json() == {"enqueued": 1}
    assert ctx.records.get(record.id).state == "waiting"


def test_storage_hook_refuses_bodies_that_are_not_events(hook_client):
    answer = hook_client.post(
        "/hooks/storage", json={"hello": 1},
        headers={"Authorization": "Bearer hook-secret"},
    )  # fmt: skip

    assert answer.status_code == 400


def test_storage_hook_is_closed_without_a_secret(api):
    assert api.post("/hooks/storage", json={"Records": []}).status_code == 401


class _MinioStream(http.server.BaseHTTPRequestHandler):
    """Speaks MinIO's listen API: line-delimited JSON on a long GET.

    The first connection sends one event, then half a line, then drops; the
    second sends the next event and keeps the connection open.
    """

    events: tuple[dict, ...] = ()
    connections = 0
    hold = threading.Event()

    def do_GET(self):
        type(self).connections += 1
        self.send_response(200)
        self.send_header("Content-Type", "application/json")
        self.end_headers()
        if type(self).connections == 1:
            self.wfile.write(json.dumps(self.events[0]).encode() + b"\n")
            self.wfile.write(b" \n")  # MinIO's keep-alive
            self.wfile.write(b'{"Records": [{"eventName"')
            self.wfile.flush()
            return
        self.wfile.write(json.dumps(self.events[1]).encode() + b"\n")
        self.wfile.flush()
        self.hold.wait(30)

    def log_message(self, *args):
        pass


def test_minio_listen_survives_a_dropped_stream(settings, clip):
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), _MinioStream)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    port = server.server_address[1]
    ctx = Context(settings)
    records = [pending_upload(ctx, clip) for _ in range(2)]
    _MinioStream.events = tuple(
        s3_event(r.source_bucket, r.source_key, r.size_bytes) for r in records
    )
    listen_ctx = Context(settings.replace(s3_endpoint=f"http://127.0.0.1:{port}"))
    stop = threading.Event()
    start_listener(listen_ctx, stop)

    try:
        deadline = time.monotonic() + 20
        while any(ctx.records.state_of(r.id) != "waiting" for r in records):
            assert time.monotonic() < deadline, "events were not all handled"
            time.sleep(0.05)
    finally:
        stop.set()
        _MinioStream.hold.set()
        server.shutdown()
        server.server_close()

    assert _MinioStream.connections >= 2
    assert jobs_enqueued(ctx) == 2


def test_signing_more_parts_keeps_a_large_upload_alive(ctx, clip):
    from api.limits import extend_upload

    record = pending_upload(ctx, clip, store=False)
    ctx.records.update(record.id, upload_expires_at="2000-01-01T00:00:00Z")

    extend_upload(ctx, record.user_id, record.id)

    assert poll_once(ctx)[Outcome.NOT_ARRIVED] == 1
    assert ctx.records.state_of(record.id) == "uploading"
