"""Database writes of many busy jobs: the outbox pump's coalescing against none.

50 threads stand for 50 jobs being processed at once. Each reports progress
through `RecordStore.update` `--rate` times a second (20 by default, ten times
the worker's own pace) for `--seconds` (10 by default), then completes. Two
runs, one after the other, on the same servers, each with fresh jobs:

- coalesced: the outbox as in production, one pump as in the poller, which
  writes at most once a second the newest change of each job;
- write per change: every change is also upserted at once by the job itself
  (each job with a connection of its own, as 50 worker processes would).

Printed side by side: the changes the jobs made, the rows Postgres wrote
(its own count, `n_tup_ins + n_tup_upd`), the statements sent, the WAL
written, how long the database took to catch up after the load stopped, and
whether every row ended at its job's final version. It starts its own
redis-server and Postgres. Run from the repository root:

    .venv/bin/python scripts/bench/status_writes.py [--jobs 50] [--rate 20]
        [--seconds 10]
"""

from __future__ import annotations

import argparse
import shutil
import sys
import tempfile
import threading
import time
from dataclasses import dataclass
from pathlib import Path

import psycopg
from redis import Redis

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT))

from vidqueue import services  # noqa: E402
from vidqueue.durable.outbox import OutboxPump  # noqa: E402
from vidqueue.durable.postgres import PostgresSink  # noqa: E402
from vidqueue.migrate import migrate  # noqa: E402
from vidqueue.records import JobRecord, RecordStore, new_job_id  # noqa: E402


@dataclass
class Figures:
    """What one run measured."""

    changes: int = 0
    statements: int = 0
    rows: int = 0
    wal_bytes: int = 0
    backlog: int = 0
    catch_up_s: float = 0.0
    final_rows: int = 0


class Bench:
    """The servers and the load."""

    def __init__(self, redis_url: str, database_url: str, jobs: int, rate: float):
        self.redis = Redis.from_url(redis_url)
        self.database_url = database_url
        self.jobs = jobs
        self.rate = rate

    def start_jobs(self, store: RecordStore) -> list[str]:
        """Fresh jobs, all `active`."""
        ids = []
        for _ in range(self.jobs):
            record = JobRecord(id=new_job_id(), user_id="bench", filename="b.mp4")
            store.create(record)
            store.transition(record.id, "waiting", ("uploading",))
            store.transition(record.id, "active", ("waiting",), stage="transcoding")
            ids.append(record.id)
        return ids

    def report_progress(self, store: RecordStore, job_id: str, seconds: float, after):
        """One job's progress reports at `rate` a second; returns how many."""
        period = 1 / self.rate
        began = time.monotonic()
        count = 0
        while (now := time.monotonic()) - began < seconds:
            store.update(job_id, only_in=("active",), progress=count % 100)
            after(job_id)
            count += 1
            time.sleep(max(0.0, began + count * period - now))
        store.transition(job_id, "completed", ("active",), progress=100)
        after(job_id)
        return count + 1

    def load(self, store: RecordStore, seconds: float, after) -> tuple[list[str], int]:
        """Run every job's reports in its own thread; returns ids and changes."""
        ids = self.start_jobs(store)
        counts: list[int] = []
        threads = [
            threading.Thread(
                target=lambda j=job_id: counts.append(
                    self.report_progress(store, j, seconds, after)
                )
            )
            for job_id in ids
        ]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
        return ids, sum(counts)

    def coalesced(self, seconds: float) -> Figures:
        """The outbox and one pump, as in production."""
        store = RecordStore(self.redis, outbox=True)
        sink = PostgresSink(self.database_url)
        pump = OutboxPump(self.redis, sink)
        stop = threading.Event()
        pumping = threading.Thread(target=pump.run, args=(stop,))
        before = self.database_counts()
        pumping.start()

        ids, changes = self.load(store, seconds, after=lambda _job_id: None)
        figures = Figures(changes=changes, backlog=pump.backlog())
        stopped = time.monotonic()
        while pump.backlog():
            time.sleep(0.01)
        figures.catch_up_s = time.monotonic() - stopped
        stop.set()
        pumping.join()
        figures.statements = pump.writes
        self.finish(figures, sink, before, ids, store)
        return figures

    def per_change(self, seconds: float) -> Figures:
        """No outbox: each job upserts its record after every change."""
        store = RecordStore(self.redis, outbox=False)
        sink = PostgresSink(self.database_url, pool_size=self.jobs)
        before = self.database_counts()

        def write(job_id: str) -> None:
            sink.upsert([store.get(job_id)])

        ids, changes = self.load(store, seconds, after=write)
        # Each change was written before the job went on: nothing to catch up.
        figures = Figures(changes=changes, statements=changes)
        self.finish(figures, sink, before, ids, store)
        return figures

    def finish(
        self,
        figures: Figures,
        sink: PostgresSink,
        before: tuple[int, int],
        ids: list[str],
        store: RecordStore,
    ) -> None:
        """Count the rows written and check every row's final version."""
        sink.close()  # closed connections hand Postgres their statistics
        time.sleep(1.0)
        rows, wal = self.database_counts()
        figures.rows, figures.wal_bytes = rows - before[0], wal - before[1]
        with psycopg.connect(self.database_url) as conn:
            versions = dict(
                conn.execute(
                    "select id, version from videos where id = any(%s)", (ids,)
                ).fetchall()
            )
        figures.final_rows = sum(
            versions.get(job_id) == store.get(job_id).version for job_id in ids
        )

    def database_counts(self) -> tuple[int, int]:
        """Rows written to the table so far, and the WAL position (bytes)."""
        with psycopg.connect(self.database_url) as conn:
            rows = conn.execute(
                "select coalesce(sum(n_tup_ins + n_tup_upd), 0)::bigint"
                " from pg_stat_user_tables where relname = 'videos'"
            ).fetchone()[0]
            wal = conn.execute(
                "select pg_wal_lsn_diff(pg_current_wal_lsn(), '0/0')::bigint"
            ).fetchone()[0]
        return int(rows), int(wal)


def show(args: argparse.Namespace, coalesced: Figures, per_change: Figures) -> None:
    s = args.seconds
    lines = [
        ("progress changes / s", lambda f: f"{f.changes / s:.0f}"),
        ("upsert statements / s", lambda f: f"{f.statements / s:.1f}"),
        ("rows written / s (Postgres)", lambda f: f"{f.rows / s:.1f}"),
        ("WAL written, kB / s", lambda f: f"{f.wal_bytes / s / 1024:.0f}"),
        ("changes waiting at stop", lambda f: f"{f.backlog}"),
        ("caught up after, s", lambda f: f"{f.catch_up_s:.2f}"),
        ("rows at the final version", lambda f: f"{f.final_rows}/{args.jobs}"),
    ]
    print(
        f"\n{args.jobs} jobs reporting progress {args.rate:g} times a second "
        f"for {s:g} s\n"
    )
    print(f"{'':30}{'coalesced':>14}{'write per change':>20}")
    for label, value in lines:
        print(f"{label:30}{value(coalesced):>14}{value(per_change):>20}")


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--jobs", type=int, default=50)
    parser.add_argument("--rate", type=float, default=20.0)
    parser.add_argument("--seconds", type=float, default=10.0)
    args = parser.parse_args()

    work = Path(tempfile.mkdtemp(prefix="vidqueue-bench-"))
    work.chmod(0o755)  # the postgres user walks down to its folder
    redis = services.start_redis(work / "redis", aof=False)
    postgres = services.start_postgres(work / "postgres")
    try:
        migrate(postgres.url)
        bench = Bench(redis.url, postgres.url, args.jobs, args.rate)
        coalesced = bench.coalesced(args.seconds)
        per_change = bench.per_change(args.seconds)
        show(args, coalesced, per_change)
    finally:
        postgres.stop()
        redis.stop()
        shutil.rmtree(work, ignore_errors=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
