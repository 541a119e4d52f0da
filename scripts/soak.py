"""Soak vidqueue: N minutes of mixed load and injected faults, then a table.

Everything runs on loopback, started here: redis-server (AOF on), moto's S3
server behind a fault-injecting proxy, Postgres, and the roles as `vidqueue`
processes (the API, the poller, several workers), restarted when they exit,
as systemd would. For `--minutes`:

- uploaders send videos the way the web page does (`POST /uploads`, the
  presigned PUT, the complete call); about one in ten is a hostile file
  from the worker's corpus, which must fail with its reason;
- pollers read `GET /status/{jobId}` and listeners follow
  `GET /events/{jobId}` until each job ends;
- faults come in turn: SIGKILL to a worker's whole tree, storage answering
  errors, dropping and cutting connections, Redis restarting (once), the
  database stopping for 20 s (once).

Then the faults stop, the jobs finish (for at most `--drain-minutes`), every
job is audited as its owner would check it, and a table is printed: uploads,
completed, failed with their reasons, lost (must be 0), duplicate outputs
(must be 0), p95 time to completion, and the peak memory of the API and of
a worker (with its work-horse and ffmpeg). It exits with 1 when anything
was lost or duplicated. Run from the repository root:

    .venv/bin/python scripts/soak.py --minutes 10
"""

from __future__ import annotations

import argparse
import collections
import random
import shutil
import signal
import statistics
import sys
import tempfile
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

from redis import Redis

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from tests.audit import History, JobAudit, audit_job  # noqa: E402
from tests.browser import Browser  # noqa: E402
from tests.media import make_clip, make_hostile_files  # noqa: E402
from tests.system import System, run_in_background  # noqa: E402

MIB = 1024 * 1024
FINAL_STATES = ("completed", "failed", "cancelled")
HOSTILE_SHARE = 0.1
FAULT_GAP_SECONDS = (30.0, 60.0)
"""Pause between two faults, drawn at random."""


@dataclass
class Upload:
    """One upload of the soak and what its users saw of it."""

    job_id: str
    source: Path
    expected: str
    ended: bool = False
    """A poller or a listener saw the job end."""
    streams: int = 0
    """Event streams followed to the job's end."""


@dataclass
class Load:
    """The uploads so far, shared by the load's threads."""

    uploads: list[Upload] = field(default_factory=list)
    refused: collections.Counter = field(default_factory=collections.Counter)
    lock: threading.Lock = field(default_factory=threading.Lock)

    def add(self, upload: Upload) -> None:
        """Count one more upload."""
        with self.lock:
            self.uploads.append(upload)

    def pick(self, rng: random.Random) -> Upload | None:
        """A job that has not ended yet, at random."""
        with self.lock:
            open_ones = [u for u in self.uploads if not u.ended]
        return rng.choice(open_ones) if open_ones else None


class Soak:
    """The load, the faults and the figures of one soak run."""

    def __init__(self, args: argparse.Namespace, folder: Path):
        self.args = args
        self.rng = random.Random(args.seed)
        self.folder = folder
        self.stop = threading.Event()
        self.load = Load()
        good = [
            make_clip(folder / "clip-a.mp4", seconds=2, size="320x240"),
            make_clip(folder / "clip-b.mp4", seconds=4, size="640x360"),
        ]
        (folder / "hostile").mkdir()
        hostile = make_hostile_files(folder / "hostile")
        self.files = [(path, "completed") for path in good]
        self.bad_files = [
            (path, "failed") for path, _ in hostile.values() if path.stat().st_size
        ]

    def run(self) -> int:
        """Run the soak; returns the exit code."""
        changes = {
            "retry_seconds": self.args.retry_seconds,
            "max_uploads_in_flight": 1000,
            "max_uploads_per_minute": 1000,
        }
        with System(
            self.folder / "system",
            workers=self.args.workers,
            seed=self.args.seed,
            changes=changes,
        ) as system:
            redis = Redis.from_url(system.settings.redis_url)
            history = History(redis)
            threads = [run_in_background("history", lambda: history.run(self.stop))]
            threads += self.start_load(system)
            faults = run_in_background("faults", lambda: self.inject_faults(system))
            deadline = time.monotonic() + self.args.minutes * 60
            while time.monotonic() < deadline and not self.stop.is_set():
                time.sleep(1)
            self.stop.set()
            faults.join(timeout=120)
            system.proxy.heal()
            for thread in threads:
                thread.join(timeout=60)
            audits = self.drain_and_audit(system, history)
            redis.close()
            print(self.table(system, audits))
            print("\nfaults:")
            for event in system.events:
                extra = f" for {event.seconds:.0f} s" if event.seconds else ""
                print(f"  {event.at_s:7.1f} s  {event.what}{extra}")
            exits = collections.Counter(e.role.split("-")[0] for e in system.exits)
            print(f"  role restarts by the supervisor: {dict(exits) or 'none'}")
            return 1 if any(self.lost(a) or a.duplicate_outputs for a in audits) else 0

    # The load

    def start_load(self, system: System) -> list[threading.Thread]:
        """Start the uploaders, pollers and listeners; they end with `stop`."""
        url = system.settings.base_url
        threads = [
            run_in_background(f"uploader-{i}", lambda: self.upload_loop(url))
            for i in range(self.args.uploaders)
        ]
        threads += [
            run_in_background(
                f"poller-{i}", lambda: self.on_running_jobs(url, self.poll, 0.2)
            )
            for i in range(self.args.pollers)
        ]
        threads += [
            run_in_background(
                f"listener-{i}", lambda: self.on_running_jobs(url, self.listen, 0.0)
            )
            for i in range(self.args.listeners)
        ]
        return threads

    def upload_loop(self, url: str) -> None:
        """Upload a file every few seconds, now and then a hostile one."""
        browser = Browser(url)
        gap_s = self.args.upload_gap * self.args.uploaders
        while not self.stop.is_set():
            hostile = self.rng.random() < HOSTILE_SHARE
            source, expected = self.rng.choice(
                self.bad_files if hostile else self.files
            )
            started = time.monotonic()
            try:
                job_id = browser.upload(source)
            except Exception as exc:  # the API refused it for good: counted
                self.load.refused[type(exc).__name__] += 1
            else:
                self.load.add(Upload(job_id, source, expected))
            self.stop.wait(max(0.0, gap_s - (time.monotonic() - started)))
        browser.close()

    def on_running_jobs(
        self, url: str, act: Callable[[Browser, Upload], None], pause_s: float
    ) -> None:
        """`act` on a job still running, picked at random, then on another."""
        browser = Browser(url)
        while not self.stop.is_set():
            upload = self.load.pick(self.rng)
            if upload is None:
                self.stop.wait(0.5)
                continue
            act(browser, upload)
            self.stop.wait(pause_s)
        browser.close()

    @staticmethod
    def poll(browser: Browser, upload: Upload) -> None:
        """Read the job's status once, as a page polling it does."""
        try:
            state = browser.status(upload.job_id)["state"]
        except Exception:  # past the browser's patience: try another job
            state = ""
        upload.ended = upload.ended or state in FINAL_STATES

    @staticmethod
    def listen(browser: Browser, upload: Upload) -> None:
        """Follow the job's event stream to its end."""
        states = browser.follow(upload.job_id, timeout_s=120)
        if states and states[-1] in FINAL_STATES:
            upload.streams += 1

    # The faults

    def inject_faults(self, system: System) -> None:
        """Faults in turn until the end; Redis and the database once each."""
        length_s = self.args.minutes * 60
        once = {
            "redis": length_s * 0.4,
            "database": length_s * 0.6,
        }
        began = time.monotonic()
        while not self.stop.wait(self.rng.uniform(*FAULT_GAP_SECONDS)):
            elapsed = time.monotonic() - began
            due = [name for name, at_s in once.items() if elapsed >= at_s]
            if due:
                once.pop(due[0])
                self.fault(system, due[0])
                continue
            self.fault(system, self.rng.choice(["kill", "kill", "storage"]))

    def fault(self, system: System, name: str) -> None:
        """Inject one fault: `kill`, `storage`, `redis` or `database`."""
        if name == "kill":
            system.kill_worker()
        elif name == "storage":
            system.fail_storage(
                seconds=self.rng.uniform(10, 20),
                error_rate=0.3,
                drop_rate=0.05,
                cut_rate=0.1,
            )
        elif name == "redis":
            system.restart_redis(down_s=3.0)
        elif name == "database":
            system.stop_database(down_s=20.0)

    # The figures

    def drain_and_audit(self, system: System, history: History) -> list[JobAudit]:
        """Wait for every job to end (bounded), then audit each one."""
        browser = Browser(system.settings.base_url)
        deadline = time.monotonic() + self.args.drain_minutes * 60
        audits = []
        for upload in self.load.uploads:
            try:
                left_s = max(1.0, deadline - time.monotonic())
                status = browser.wait(upload.job_id, left_s)
                history.catch_up()
                audit = audit_job(
                    system.ctx, history, status, upload.source, upload.expected
                )
            except Exception as exc:  # the system is down: this job counts as lost
                audit = unaudited(upload, exc)
            audits.append(audit)
        browser.close()
        return audits

    @staticmethod
    def lost(audit: JobAudit) -> bool:
        """A job that never ended, or whose outputs are not what completed says."""
        if not audit.ended:
            return True
        return audit.state == "completed" and any(
            "outputs" in p or "video lasts" in p or "durable" in p
            for p in audit.problems
        )

    def table(self, system: System, audits: list[JobAudit]) -> str:
        """The figures of the run as a Markdown table, and any problems."""
        completed = [a for a in audits if a.state == "completed"]
        failed = collections.Counter(
            a.failed_reason.split(":")[0] for a in audits if a.state == "failed"
        )
        wrong = [a for a in audits if a.state != a.expected and a.ended]
        times = [a.took_s for a in completed if a.took_s is not None]
        p95 = statistics.quantiles(times, n=20)[-1] if len(times) >= 2 else None
        followed = sum(1 for u in self.load.uploads if u.streams)
        retried = sum(1 for a in audits if a.attempts > 1)
        by_id = {a.job_id: a for a in audits}
        killed = [by_id[j] for j in system.killed_jobs if j in by_id]
        killed_done = sum(1 for a in killed if a.state == "completed")
        reasons = "; ".join(f"{n} {r}" for r, n in failed.most_common()) or "none"
        rows = [
            ("uploads", f"{len(audits)}"),
            ("completed", f"{len(completed)}"),
            ("failed, with reason", f"{sum(failed.values())} ({reasons})"),
            ("ended otherwise than expected", f"{len(wrong)}"),
            ("lost (must be 0)", f"{sum(1 for a in audits if self.lost(a))}"),
            (
                "duplicate outputs (must be 0)",
                f"{sum(1 for a in audits if a.duplicate_outputs)}",
            ),
            ("jobs retried after a fault", f"{retried}"),
            (
                "jobs whose worker was SIGKILLed",
                f"{len(killed)} ({killed_done} completed, attempts "
                f"{', '.join(str(a.attempts) for a in killed) or '-'})",
            ),
            ("uploads refused for good", f"{sum(self.load.refused.values())}"),
            ("jobs followed to their end by event streams", f"{followed}"),
            ("p95 time to completion", f"{p95:.1f} s" if p95 else "n/a"),
            ("peak RSS, API", f"{system.peak_rss.get('api', 0) / MIB:.0f} MiB"),
            (
                "peak RSS, worker (+ work-horse + ffmpeg)",
                f"{system.peak_rss.get('worker', 0) / MIB:.0f} MiB",
            ),
            ("peak RSS, poller", f"{system.peak_rss.get('poller', 0) / MIB:.0f} MiB"),
        ]
        width = max(len(name) for name, _ in rows)
        lines = [f"| {'figure':{width}} | value |", f"| {'-' * width} | --- |"]
        lines += [f"| {name:{width}} | {value} |" for name, value in rows]
        problems = [p for a in audits for p in a.problems if a.state == a.expected]
        if problems:
            lines += ["", "problems:", *(f"  {p}" for p in problems[:50])]
        return "\n".join(lines)


def unaudited(upload: Upload, exc: Exception) -> JobAudit:
    """The audit of a job the system could not answer for."""
    return JobAudit(
        job_id=upload.job_id, expected=upload.expected, state="unknown",
        failed_reason="", attempts=0, times_ended=0, outputs=[],
        expected_outputs=[], video_seconds=None, source_seconds=None,
        row_state=None, took_s=None,
        problems=[f"job {upload.job_id}: could not be audited: {exc}"],
    )  # fmt: skip


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--minutes", type=float, default=10.0)
    parser.add_argument("--drain-minutes", type=float, default=5.0)
    parser.add_argument("--workers", type=int, default=3)
    parser.add_argument("--uploaders", type=int, default=2)
    parser.add_argument(
        "--upload-gap", type=float, default=4.0, help="seconds between uploads"
    )
    parser.add_argument("--pollers", type=int, default=4)
    parser.add_argument("--listeners", type=int, default=4)
    parser.add_argument("--retry-seconds", default="0,5,30,60")
    parser.add_argument("--seed", type=int, default=None)
    args = parser.parse_args()
    args.seed = random.randrange(10**6) if args.seed is None else args.seed
    print(f"soak: {args.minutes:g} min, seed {args.seed}", flush=True)

    folder = Path(tempfile.mkdtemp(prefix="vidqueue-soak-"))
    folder.chmod(0o755)  # Postgres runs as its own user and must reach it
    try:
        soak = Soak(args, folder)
        end_early_on_signals(soak.stop)
        return soak.run()
    except KeyboardInterrupt:
        return 130
    finally:
        shutil.rmtree(folder, ignore_errors=True)


def end_early_on_signals(stop: threading.Event) -> None:
    """The first SIGINT or SIGTERM ends the load early (the table still comes);
    a second one stops at once, cleaning up."""

    def handle(_signum, _frame) -> None:
        if stop.is_set():
            raise KeyboardInterrupt
        print("soak: stopping early; draining and auditing", flush=True)
        stop.set()

    for signum in (signal.SIGINT, signal.SIGTERM):
        signal.signal(signum, handle)


if __name__ == "__main__":
    sys.exit(main())
