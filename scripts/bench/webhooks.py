"""Webhooks as production runs them: how long from a job's end to its webhook.

Starts its own redis-server, a receiver on 127.0.0.1 (allowed through
`VIDQUEUE_WEBHOOK_ALLOW_HOSTS`), one `vidqueue poller` (whose dispatcher
reads the outbox) and `--workers` processes of `vidqueue worker --queue
webhooks`. Then `--jobs` jobs end as `failed`, `--rate` a second, written
through `RecordStore` as the worker writes them (no video is needed for the
webhooks). Printed: the time from each job's end to its webhook reaching the
receiver (median, 95th percentile, most), deliveries a second while they
flowed, and the requests against the jobs (exactly one each). Run from the
repository root:

    .venv/bin/python scripts/bench/webhooks.py [--jobs 200] [--rate 50]
        [--workers 1]
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT))

from redis import Redis  # noqa: E402
from redis.exceptions import ResponseError  # noqa: E402
from rq import Worker  # noqa: E402

from tests.receiver import Received, Receiver  # noqa: E402
from vidqueue import defaults, services  # noqa: E402
from vidqueue.records import JobRecord, RecordStore, new_job_id, utcnow  # noqa: E402
from vidqueue.settings import Settings  # noqa: E402
from vidqueue.webhooks.delivery import webhook_queue  # noqa: E402


class TimedReceiver(Receiver):
    """A receiver that notes when each job's webhook arrived."""

    def __init__(self):
        super().__init__()
        self.arrived: dict[str, float] = {}

    def answer(self, received: Received) -> int:
        """Note the arrival, then answer as the plain receiver does."""
        self.arrived[json.loads(received.body)["jobId"]] = time.monotonic()
        return super().answer(received)


def run(jobs: int, rate: float, workers: int, folder: Path) -> None:
    """Start everything, end the jobs, print the figures."""
    redis_service = services.start_redis(folder / "redis", aof=False)
    processes: list[subprocess.Popen] = []
    try:
        with TimedReceiver() as receiver:
            settings = Settings(
                redis_url=redis_service.url,
                webhook_url=f"{receiver.url}/hook",
                webhook_secret="bench-secret",
                webhook_allow_hosts="127.0.0.1",
                inbox_interval_seconds=0,
                data_dir=folder / "data",
            )
            env = {**os.environ, **settings.to_env()}
            roles = [["poller"]] + [["worker", "--queue", "webhooks"]] * workers
            for number, arguments in enumerate(roles):
                command = [sys.executable, "-m", "vidqueue.cli", *arguments]
                with (folder / f"role-{number}.log").open("ab") as log:
                    processes.append(
                        subprocess.Popen(command, env=env, stdout=log, stderr=log)
                    )
            redis = Redis.from_url(redis_service.url)
            wait_until_ready(redis, workers)
            ended = end_jobs(RecordStore(redis, outbox=True), jobs, rate)
            wait_for_all(receiver, ended)
            report(receiver, ended)
            redis.close()
    finally:
        for process in processes:
            process.terminate()
        for process in processes:
            process.wait(timeout=30)
        redis_service.stop()


def wait_until_ready(redis: Redis, workers: int) -> None:
    """Wait until the dispatcher reads the outbox and the workers listen."""
    queue = webhook_queue(redis)
    while Worker.count(queue=queue) < workers or not _dispatching(redis):
        time.sleep(0.05)


def _dispatching(redis: Redis) -> bool:
    try:
        groups = redis.xinfo_groups(defaults.OUTBOX_KEY)
    except ResponseError:  # no stream yet
        return False
    return any(group["name"] == defaults.WEBHOOK_GROUP.encode() for group in groups)


def end_jobs(store: RecordStore, jobs: int, rate: float) -> dict[str, float]:
    """Create `jobs` waiting jobs and fail them, `rate` a second."""
    ended: dict[str, float] = {}
    for _ in range(jobs):
        record = JobRecord(id=new_job_id(), user_id="bench", state="waiting")
        store.create(record)
        started = time.monotonic()
        store.transition(
            record.id, "failed", ("waiting",),
            failed_reason="bench", finished_at=utcnow(),
        )  # fmt: skip
        ended[record.id] = time.monotonic()
        time.sleep(max(0.0, 1 / rate - (time.monotonic() - started)))
    return ended


def wait_for_all(receiver: TimedReceiver, ended: dict[str, float]) -> None:
    """Wait until every job's webhook arrived, or a minute passed."""
    deadline = time.monotonic() + 60
    while len(receiver.arrived) < len(ended) and time.monotonic() < deadline:
        time.sleep(0.05)


def report(receiver: TimedReceiver, ended: dict[str, float]) -> None:
    """Print the latencies, the rate and the count of requests."""
    latencies_ms = sorted(
        (receiver.arrived[job] - at) * 1000
        for job, at in ended.items()
        if job in receiver.arrived
    )
    if not latencies_ms:
        print("no webhook arrived; see the role logs")
        return
    first, last = min(ended.values()), max(receiver.arrived.values())
    p95 = latencies_ms[int(0.95 * (len(latencies_ms) - 1))]
    print(f"jobs ended                 {len(ended)}")
    print(f"webhooks received          {len(receiver.requests)}")
    print(f"jobs announced             {len(receiver.arrived)}")
    print(f"end -> webhook, median     {statistics.median(latencies_ms):.0f} ms")
    print(f"end -> webhook, p95        {p95:.0f} ms")
    print(f"end -> webhook, most       {latencies_ms[-1]:.0f} ms")
    print(f"deliveries a second        {len(receiver.arrived) / (last - first):.1f}")


def main() -> None:
    """Parse the options and run the bench in a temporary folder."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--jobs", type=int, default=200)
    parser.add_argument("--rate", type=float, default=50.0)
    parser.add_argument("--workers", type=int, default=1)
    args = parser.parse_args()
    folder = Path(tempfile.mkdtemp(prefix="vidqueue-bench-webhooks-"))
    try:
        run(args.jobs, args.rate, args.workers, folder)
    finally:
        shutil.rmtree(folder, ignore_errors=True)


if __name__ == "__main__":
    main()
