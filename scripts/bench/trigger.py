"""How fast and how cheaply each trigger path turns an upload into a job.

1. Latency from "PUT finished" to `waiting` (p50/p95) through the client's
   complete call, the storage webhook and the poller, each against a real
   API or poller process.
2. One poll cycle with 100 pending uploads while the bucket holds 0 and then
   20,000 other objects: S3 requests made and time taken.
3. Events handled per second for 2,000 S3 event records.

It starts its own redis-server and S3 server (moto's). Run from the
repository root:

    .venv/bin/python scripts/bench/trigger.py [--uploads 30] [--others 20000]
"""

from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import sys
import tempfile
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from urllib.parse import quote_plus

import httpx

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT))

from handlers.poller import Poller  # noqa: E402
from handlers.trigger import handle  # noqa: E402
from vidqueue import services  # noqa: E402
from vidqueue.context import Context  # noqa: E402
from vidqueue.keys import upload_key  # noqa: E402
from vidqueue.records import JobRecord, new_job_id  # noqa: E402
from vidqueue.settings import Settings  # noqa: E402
from vidqueue.storage import Storage  # noqa: E402

HOOK_SECRET = "bench-hook-secret"  # noqa: S105 - a local test server
BODY = b"\0" * 1024


def new_upload(ctx: Context) -> JobRecord:
    job_id = new_job_id()
    record = JobRecord(
        id=job_id, user_id="local",
        source_bucket=ctx.storage.upload_bucket,
        source_key=upload_key("local", job_id, "clip.mp4"),
        filename="clip.mp4", content_type="video/mp4", size_bytes=len(BODY),
        upload_expires_at="2999-01-01T00:00:00Z",
    )  # fmt: skip
    ctx.records.create(record)
    return record


def put(ctx: Context, record: JobRecord) -> None:
    request = ctx.storage.presign_put(record.source_key, "video/mp4", len(BODY), 300)
    httpx.put(request.url, headers=request.headers, content=BODY).raise_for_status()


def event_for(record: JobRecord) -> dict:
    return {
        "Records": [{
            "eventName": "s3:ObjectCreated:Put",
            "s3": {
                "bucket": {"name": record.source_bucket},
                "object": {"key": quote_plus(record.source_key),
                           "size": record.size_bytes, "eTag": "e"},
            },
        }]
    }  # fmt: skip


def wait_waiting(ctx: Context, job_id: str, timeout_s: float = 30) -> float:
    deadline = time.monotonic() + timeout_s
    while ctx.records.state_of(job_id) != "waiting":
        if time.monotonic() > deadline:
            raise SystemExit(f"job {job_id} never reached waiting")
        time.sleep(0.002)
    return time.monotonic()


def latencies(ctx: Context, count: int, announce) -> list[float]:
    """Seconds from each PUT's end to its job's `waiting`."""
    found = []
    for _ in range(count):
        record = new_upload(ctx)
        put(ctx, record)
        done_at = time.monotonic()
        announce(record)
        found.append(wait_waiting(ctx, record.id) - done_at)
        time.sleep(0.05)
    return found


def percentile(values: list[float], share: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(share * (len(ordered) - 1)))]


def start_role(role: str, settings: Settings, log: Path) -> subprocess.Popen:
    env = {**os.environ, **settings.to_env()}
    with log.open("ab") as out:
        return subprocess.Popen(
            [sys.executable, "-m", "vidqueue.cli", role],
            env=env, stdout=out, stderr=subprocess.STDOUT,
        )  # fmt: skip


def wait_http(url: str) -> None:
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        try:
            if httpx.get(url, timeout=1).status_code == 200:
                return
        except httpx.HTTPError:
            pass
        time.sleep(0.1)
    raise SystemExit(f"{url} never answered")


class RequestCounter:
    """Counts the S3 requests a boto3 client sends, by operation."""

    def __init__(self, storage: Storage):
        self.count = 0
        storage.client.meta.events.register("before-send.s3.*", self._seen)

    def _seen(self, **_kwargs) -> None:
        self.count += 1


def poll_cost(ctx: Context, pending: int) -> tuple[int, float]:
    for _ in range(pending):
        new_upload(ctx)
    counter = RequestCounter(ctx.storage)
    began = time.monotonic()
    Poller(ctx).poll_once()
    elapsed = time.monotonic() - began
    ctx.redis.delete("vidqueue:uploading")
    return counter.count, elapsed


def fill_bucket(ctx: Context, count: int) -> None:
    client = ctx.storage.client
    bucket = ctx.storage.upload_bucket

    def put_one(n: int) -> None:
        client.put_object(Bucket=bucket, Key=f"u/other/{n:08d}/old.mp4", Body=b"x")

    with ThreadPoolExecutor(16) as pool:
        list(pool.map(put_one, range(count)))


def events_per_second(ctx: Context, count: int) -> float:
    records = [new_upload(ctx) for _ in range(count)]
    events = [event_for(r) for r in records]
    began = time.monotonic()
    for event in events:
        handle(event, ctx)
    return count / (time.monotonic() - began)


def run(args: argparse.Namespace) -> None:
    work = Path(tempfile.mkdtemp(prefix="vidqueue-bench-"))
    redis = services.start_redis(work / "redis", aof=False)
    s3 = services.start_s3(work / "s3")
    port = services.free_port()
    settings = Settings(
        redis_url=redis.url, s3_endpoint=s3.url,
        s3_access_key="bench", s3_secret_key="bench",
        api_port=port, hook_secret=HOOK_SECRET, data_dir=work,
        inbox_interval_seconds=0,
    )  # fmt: skip
    Storage(settings).ensure_buckets()
    ctx = Context(settings)
    roles = [start_role("api", settings, work / "api.log")]
    try:
        base = settings.base_url
        wait_http(base + "/healthz")
        http = httpx.Client(base_url=base)
        hook_headers = {"Authorization": f"Bearer {HOOK_SECRET}"}

        rows = [
            ("complete call", latencies(
                ctx, args.uploads,
                lambda r: http.post(f"/uploads/{r.id}/complete").raise_for_status(),
            )),
            ("storage webhook", latencies(
                ctx, args.uploads,
                lambda r: http.post("/hooks/storage", json=event_for(r),
                                    headers=hook_headers).raise_for_status(),
            )),
        ]  # fmt: skip
        roles.append(start_role("poller", settings, work / "poller.log"))
        time.sleep(1)
        rows.append(("poller", latencies(ctx, args.uploads, lambda r: None)))

        cost_empty = poll_cost(ctx, 100)
        print(f"putting {args.others} other objects in the bucket...", flush=True)
        fill_bucket(ctx, args.others)
        cost_full = poll_cost(ctx, 100)
        rate = events_per_second(ctx, 2000)
    finally:
        for role in roles:
            role.terminate()
            role.wait(30)
        redis.stop()
        s3.stop()

    interval = settings.poll_interval_seconds
    print()
    print(f"{'path: PUT finished -> waiting':32} {'p50':>9} {'p95':>9}  target p95")
    targets = {"complete call": 0.1, "storage webhook": 0.1, "poller": interval + 1}
    for name, values in rows:
        p50, p95 = statistics.median(values) * 1000, percentile(values, 0.95) * 1000
        target = targets[name] * 1000
        mark = "ok" if p95 < target else "MISSED"
        print(f"{name:32} {p50:7.1f}ms {p95:7.1f}ms  < {target:.0f} ms {mark}")
    print()
    print(f"{'one poll cycle, 100 pending':32} {'requests':>9} {'time':>9}")
    for label, (requests, seconds) in (
        ("bucket with 0 other objects", cost_empty),
        (f"bucket with {args.others} others", cost_full),
    ):
        print(f"{label:32} {requests:9d} {seconds * 1000:7.1f}ms")
    print()
    mark = "ok" if rate >= 1000 else "MISSED"
    print(
        f"events handled: {rate:,.0f} per second for 2,000 events (target 1,000) {mark}"
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--uploads", type=int, default=30)
    parser.add_argument("--others", type=int, default=20_000)
    run(parser.parse_args())


if __name__ == "__main__":
    main()
