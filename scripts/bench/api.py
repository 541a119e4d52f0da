"""`GET /status` under concurrent pollers, next to a bare route, side by side.

One uvicorn process serves the vidqueue API with one extra route,
`GET /bench/constant`, a bare Litestar handler answering a constant JSON.
Closed-loop pollers (50 by default), each on its own keep-alive connection,
send requests back to back for a while: first to the bare route, then to
`GET /status/{jobId}` of waiting jobs (so the answer carries a queue position
and an estimate), in alternating rounds. It prints requests per second and
latency percentiles of both, and the ratio of their rates.

It starts its own redis-server and S3 server (moto's). Run from the
repository root:

    .venv/bin/python scripts/bench/api.py [--pollers 50] [--seconds 10]
        [--rounds 2] [--jobs 500] [--auth none|apikey]
"""

from __future__ import annotations

import argparse
import asyncio
import os
import random
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT))

from vidqueue import services  # noqa: E402
from vidqueue.context import Context  # noqa: E402
from vidqueue.keys import upload_key  # noqa: E402
from vidqueue.queue import enqueue_video  # noqa: E402
from vidqueue.records import JobRecord, new_job_id  # noqa: E402
from vidqueue.settings import Settings  # noqa: E402
from vidqueue.storage import Storage  # noqa: E402

BARE_PATH = "/bench/constant"
API_KEY = "bench-key-0123456789abcdef"


def serve() -> None:
    """The server process: the API from the environment, plus the bare route."""
    from litestar import get

    from api.app import create_app
    from api.server import serve as serve_api

    @get(BARE_PATH, sync_to_thread=False)
    def constant() -> dict[str, str]:
        return {"status": "ok"}

    settings = Settings.from_env()
    app = create_app(Context(settings))
    app.register(constant)
    serve_api(app, settings)


def seed_jobs(ctx: Context, count: int) -> list[str]:
    """`count` waiting jobs on the queue, and one measured job for estimates."""
    ids = []
    for n in range(count):
        job_id = new_job_id()
        ctx.records.create(
            JobRecord(
                id=job_id,
                user_id="local",
                source_bucket=ctx.settings.upload_bucket,
                source_key=upload_key("local", job_id, f"clip-{n}.mp4"),
                filename=f"clip-{n}.mp4",
                content_type="video/mp4",
                size_bytes=10_000_000,
            )
        )
        ctx.records.transition(job_id, "waiting", ("uploading",), stage="queued")
        enqueue_video(ctx.queue, job_id, ctx.settings)
        ids.append(job_id)
    ctx.records.record_throughput(60.0, 20.0)
    return ids


@dataclass
class Run:
    """What the pollers saw on one route."""

    requests: int = 0
    errors: int = 0
    seconds: float = 0.0
    latencies_s: list[float] = field(default_factory=list)

    def add(self, other: Run) -> None:
        self.requests += other.requests
        self.errors += other.errors
        self.seconds += other.seconds
        self.latencies_s += other.latencies_s

    @property
    def rps(self) -> float:
        return self.requests / self.seconds if self.seconds else 0.0

    def percentile_ms(self, share: float) -> float:
        ordered = sorted(self.latencies_s)
        if not ordered:
            return float("nan")
        return ordered[min(len(ordered) - 1, int(share * len(ordered)))] * 1000


async def poll(port: int, paths: list[str], headers: str, until: float, run: Run):
    """One poller: a keep-alive connection, requests back to back."""
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    index = random.randrange(len(paths))
    try:
        while time.perf_counter() < until:
            path = paths[index % len(paths)]
            index += 1
            request = f"GET {path} HTTP/1.1\r\nHost: bench\r\n{headers}\r\n"
            began = time.perf_counter()
            writer.write(request.encode())
            head = await reader.readuntil(b"\r\n\r\n")
            length = 0
            for line in head.split(b"\r\n"):
                if line.lower().startswith(b"content-length:"):
                    length = int(line.split(b":", 1)[1])
            await reader.readexactly(length)
            run.latencies_s.append(time.perf_counter() - began)
            run.requests += 1
            if not head.startswith(b"HTTP/1.1 200"):
                run.errors += 1
    finally:
        writer.close()


async def load(port: int, paths: list[str], headers: str, pollers: int, seconds: float):
    """`pollers` pollers on `paths` for `seconds`."""
    run = Run()
    began = time.perf_counter()
    until = began + seconds
    await asyncio.gather(
        *(poll(port, paths, headers, until, run) for _ in range(pollers))
    )
    run.seconds = time.perf_counter() - began
    return run


def start_server(settings: Settings, log: Path) -> subprocess.Popen:
    env = {**os.environ, **settings.to_env()}
    with log.open("ab") as out:
        process = subprocess.Popen(
            [sys.executable, __file__, "--serve"],
            env=env,
            stdout=out,
            stderr=subprocess.STDOUT,
            cwd=ROOT,
        )
    deadline = time.monotonic() + 30
    while not services._http_answers(f"{settings.base_url}/healthz"):
        if process.poll() is not None or time.monotonic() > deadline:
            raise SystemExit(f"the API did not start; see {log}")
        time.sleep(0.1)
    return process


def bench(args: argparse.Namespace, work: Path) -> None:
    redis = services.start_redis(work / "redis", aof=False)
    s3 = services.start_s3(work / "s3")
    settings = Settings(
        redis_url=redis.url,
        s3_endpoint=s3.url,
        s3_access_key="bench",
        s3_secret_key="bench",
        api_port=services.free_port(),
        auth_mode=args.auth,
        api_keys=f"local:{API_KEY}" if args.auth == "apikey" else None,
        max_uploads_per_minute=10**6,
    )
    Storage(settings).ensure_buckets()
    job_ids = seed_jobs(Context(settings), args.jobs)
    server = start_server(settings, work / "api.log")
    headers = ""
    if args.auth == "apikey":
        headers = f"Authorization: Bearer {API_KEY}\r\n"
    routes = {"bare": [BARE_PATH], "status": [f"/status/{i}" for i in job_ids]}
    try:
        port = settings.api_port
        for paths in routes.values():
            asyncio.run(load(port, paths, headers, args.pollers, 2.0))  # warm-up
        results = {name: Run() for name in routes}
        for _ in range(args.rounds):
            for name, paths in routes.items():
                run = asyncio.run(
                    load(port, paths, headers, args.pollers, args.seconds)
                )
                results[name].add(run)
    finally:
        server.terminate()
        server.wait(10)
        redis.stop()
        s3.stop()
    report(args, results)


def report(args: argparse.Namespace, results: dict[str, Run]) -> None:
    print(
        f"{args.pollers} pollers, {args.rounds} rounds of {args.seconds:.0f} s per "
        f"route, auth {args.auth}, {args.jobs} waiting jobs"
    )
    print(f"{'route':<28}{'req/s':>10}{'p50 ms':>10}{'p99 ms':>10}{'errors':>8}")
    names = {"bare": "GET /bench/constant (bare)", "status": "GET /status/{jobId}"}
    for name, run in results.items():
        print(
            f"{names[name]:<28}{run.rps:>10.0f}{run.percentile_ms(0.5):>10.2f}"
            f"{run.percentile_ms(0.99):>10.2f}{run.errors:>8}"
        )
    ratio = results["status"].rps / results["bare"].rps
    print(f"ratio of requests per second (status / bare): {ratio:.2f}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--pollers", type=int, default=50)
    parser.add_argument("--seconds", type=float, default=10.0)
    parser.add_argument("--rounds", type=int, default=2)
    parser.add_argument("--jobs", type=int, default=500)
    parser.add_argument("--auth", choices=("none", "apikey"), default="none")
    parser.add_argument("--serve", action="store_true", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.serve:
        serve()
        return
    with tempfile.TemporaryDirectory(prefix="vidqueue-bench-") as work:
        bench(args, Path(work))


if __name__ == "__main__":
    main()
