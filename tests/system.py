"""A whole vidqueue in real processes, with the faults a campaign injects.

`System` starts its own redis-server (AOF on), Postgres (migrated) and a
fault proxy in front of an S3 server, then the roles as `vidqueue` commands:
the API, the poller (with the outbox pump and the reconcile) and several
workers. It restarts a role that exits, as systemd's `Restart=always` does,
and notes it in `exits`: a role that dies of a fault is a finding. The
faults: `kill_worker` (SIGKILL to a worker's whole tree, then a new worker),
`restart_redis`, `stop_database` and `fail_storage` (through the proxy).
"""

from __future__ import annotations

import contextlib
import logging
import os
import random
import subprocess
import sys
import threading
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import httpx
from rq import Worker

from tests.database import Database
from tests.faults import FaultyProxy
from tests.processes import kill_tree, tree_rss_bytes
from vidqueue import services
from vidqueue.context import Context
from vidqueue.migrate import migrate
from vidqueue.settings import Settings
from vidqueue.storage import Storage

logger = logging.getLogger("tests.system")

START_TIMEOUT_SECONDS = 60.0
SUPERVISE_INTERVAL_SECONDS = 0.5


class RedisServer:
    """A redis-server with AOF on, which a test can stop and start again."""

    def __init__(self, data_dir: Path):
        self.data_dir = data_dir
        self.service = services.start_redis(data_dir, aof=True)
        self.port = self.service.port
        self.url = self.service.url

    def stop(self) -> None:
        """Stop it; it writes its AOF to disk first."""
        self.service.stop()

    def start(self) -> None:
        """Start it again on the same port and files."""
        self.service = services.start_redis(self.data_dir, port=self.port, aof=True)


@dataclass
class Role:
    """One role's process, and how to start it again."""

    name: str
    arguments: tuple[str, ...]
    process: subprocess.Popen

    @property
    def kind(self) -> str:
        """`api`, `poller` or `worker`."""
        return self.name.split("-")[0]


@dataclass
class Event:
    """A fault injected, when (seconds since the system started) and how long."""

    at_s: float
    what: str
    seconds: float = 0.0


@dataclass
class Exit:
    """A role that exited without being asked to."""

    role: str
    code: int | None
    at_s: float


@dataclass
class System:
    """The services and role processes of one vidqueue under test.

    Args:
        folder: where servers keep their files and roles their logs; the
            postgres user must be able to reach it.
        workers: how many `vidqueue worker` processes run.
        s3_url: an S3 server to use (else one is started).
        seed: seeds the proxy's and the faults' random choices.
        changes: settings for every role (e.g. `retry_seconds`).
    """

    folder: Path
    workers: int = 3
    s3_url: str | None = None
    seed: int = 0
    changes: dict = field(default_factory=dict)
    roles: dict[str, Role] = field(default_factory=dict)
    events: list[Event] = field(default_factory=list)
    exits: list[Exit] = field(default_factory=list)
    killed_jobs: list[str] = field(default_factory=list)
    """The jobs that workers were running when they were killed."""

    def __post_init__(self):
        self.random = random.Random(self.seed)
        self.began = time.monotonic()
        self.peak_rss: dict[str, int] = {}
        """The highest resident memory of one process tree, by kind of role."""
        self._owned: list[services.Service] = []
        self._lock = threading.RLock()
        self._stopping = threading.Event()
        self._supervisor = threading.Thread(
            target=self._supervise, name="supervisor", daemon=True
        )

    # Starting and stopping

    def start(self) -> System:
        """Start the servers and every role; return once they all serve."""
        self.folder.mkdir(parents=True, exist_ok=True)
        self.redis = RedisServer(self.folder / "redis")
        if self.s3_url is None:
            s3 = services.start_s3(self.folder / "s3")
            self._owned.append(s3)
            self.s3_url = s3.url
        self.proxy = FaultyProxy(self.s3_url, seed=self.seed).start()
        self.database = Database(self.folder / "postgres")
        migrate(self.database.service.url)
        self.settings = self._settings()
        Storage(self.settings).ensure_buckets()
        self.ctx = Context(self.settings)

        self._start_role("api", ("api",))
        self._start_role("poller", ("poller",))
        for index in range(self.workers):
            self._start_role(f"worker-{index}", ("worker",))
        self._wait_until_serving()
        self._supervisor.start()
        return self

    def stop(self) -> None:
        """Stop every role (SIGTERM, then SIGKILL), then the servers."""
        self._stopping.set()
        if self._supervisor.is_alive():  # it must start no role from now on
            self._supervisor.join(timeout=10)
        with self._lock:
            roles = list(self.roles.values())
        for role in roles:
            if role.process.poll() is None:
                role.process.terminate()
        for role in roles:
            try:
                role.process.wait(timeout=20)
            except subprocess.TimeoutExpired:
                kill_tree(role.process.pid)
                role.process.wait()
        if hasattr(self, "proxy"):
            self.proxy.stop()
        # Whatever started, even when the start failed half-way.
        for server in (getattr(self, "database", None), getattr(self, "redis", None)):
            if server is not None:
                server.service.stop()
        for service in self._owned:
            service.stop()

    def __enter__(self) -> System:
        try:
            return self.start()
        except BaseException:
            self.stop()
            raise

    def __exit__(self, *exc_info) -> None:
        self.stop()

    def _settings(self) -> Settings:
        suffix = uuid.uuid4().hex[:8]
        values = {
            "redis_url": self.redis.url,
            "s3_endpoint": self.proxy.url,
            "s3_access_key": "campaign-key",
            "s3_secret_key": "campaign-secret",
            "upload_bucket": f"uploads-{suffix}",
            "output_bucket": f"videos-{suffix}",
            "database_url": self.database.service.url,
            "api_port": services.free_port(),
            "poll_interval_seconds": 0.5,
            "data_dir": self.folder / "data",
            **self.changes,
        }
        return Settings(**values)

    def _start_role(self, name: str, arguments: tuple[str, ...]) -> Role:
        inherited = {
            k: v for k, v in os.environ.items() if not k.startswith("VIDQUEUE")
        }
        env = {**inherited, **self.settings.to_env()}
        with (self.folder / f"{name}.log").open("ab") as log:
            process = subprocess.Popen(
                [sys.executable, "-m", "vidqueue.cli", *arguments],
                env=env, stdout=log, stderr=subprocess.STDOUT,
                start_new_session=True,
            )  # fmt: skip
        role = Role(name, arguments, process)
        with self._lock:
            self.roles[name] = role
        return role

    def _wait_until_serving(self) -> None:
        deadline = time.monotonic() + START_TIMEOUT_SECONDS
        url = f"{self.settings.base_url}/healthz"
        while time.monotonic() < deadline:
            dead = [r.name for r in self.roles.values() if r.process.poll() is not None]
            if dead:
                raise RuntimeError(f"{', '.join(dead)} exited at start")
            with contextlib.suppress(httpx.HTTPError):
                serving = httpx.get(url, timeout=1).status_code == 200
                if serving and len(self.worker_pids()) >= self.workers:
                    return
            time.sleep(0.1)
        raise RuntimeError("the system did not start in time")

    # Watching

    def elapsed(self) -> float:
        """Seconds since the system was built."""
        return time.monotonic() - self.began

    def _supervise(self) -> None:
        while not self._stopping.wait(SUPERVISE_INTERVAL_SECONDS):
            with self._lock:
                roles = list(self.roles.values())
            for role in roles:
                rss = tree_rss_bytes(role.process.pid)
                self.peak_rss[role.kind] = max(self.peak_rss.get(role.kind, 0), rss)
                code = role.process.poll()
                if code is None or self._stopping.is_set():
                    continue
                self.exits.append(Exit(role.name, code, self.elapsed()))
                logger.warning("%s exited with %s; starting it again", role.name, code)
                self._start_role(role.name, role.arguments)

    def worker_pids(self) -> dict[int, str | None]:
        """The live worker processes registered with RQ, and each one's job."""
        found = {}
        for worker in Worker.all(queue=self.ctx.queue):
            pid = worker.name.rsplit(".", 1)[-1]
            if pid.isdigit():
                found[int(pid)] = worker.get_current_job_id()
        return found

    # Faults

    def note(self, what: str, seconds: float = 0.0) -> None:
        """Record a fault in `events`."""
        self.events.append(Event(round(self.elapsed(), 1), what, seconds))
        logger.info("fault at %.1f s: %s", self.elapsed(), what)

    def kill_worker(self, busy_within_s: float = 5.0) -> str | None:
        """SIGKILL a worker's whole tree, preferring one with a job, and replace it.

        Waits up to `busy_within_s` for a worker to be running a job. Returns
        the job it was running (None: it was idle).
        """
        deadline = time.monotonic() + busy_within_s
        jobs = self._jobs_of_workers()
        while not any(jobs.values()) and time.monotonic() < deadline:
            time.sleep(0.1)
            jobs = self._jobs_of_workers()
        with self._lock:
            if self._stopping.is_set():
                return None
            workers = [r for r in self.roles.values() if r.kind == "worker"]
            busy = [r for r in workers if jobs.get(r.process.pid)]
            role = self.random.choice(busy or workers)
            job_id = jobs.get(role.process.pid)
            kill_tree(role.process.pid)
            role.process.wait()
            self._start_role(role.name, role.arguments)
        self.note(f"SIGKILL {role.name} (job {job_id or 'none'})")
        if job_id:
            self.killed_jobs.append(job_id)
        return job_id

    def _jobs_of_workers(self) -> dict[int, str | None]:
        try:
            return self.worker_pids()
        except Exception:  # Redis restarting: no worker looks busy
            return {}

    def restart_redis(self, down_s: float = 3.0) -> None:
        """Stop redis-server (it syncs its AOF), wait, start it on the same port."""
        self.note("redis-server restarted", down_s)
        self.redis.stop()
        if not self._stopping.wait(down_s):
            self.redis.start()

    def stop_database(self, down_s: float = 20.0) -> None:
        """Stop Postgres for `down_s`, then start it again."""
        self.note("database stopped", down_s)
        self.database.stop()
        if not self._stopping.wait(down_s):
            self.database.start()

    def fail_storage(self, seconds: float, **rates) -> None:
        """Make the S3 proxy answer errors, drop and cut connections for a while."""
        described = ", ".join(f"{k} {v}" for k, v in rates.items())
        self.note(f"storage faults: {described}", seconds)
        self.proxy.fail(seconds=seconds, **rates)


def run_in_background(name: str, action: Callable[[], object]) -> threading.Thread:
    """Run `action` in a daemon thread, logging what it raises."""

    def run() -> None:
        try:
            action()
        except Exception:
            logger.exception("%s failed", name)

    thread = threading.Thread(target=run, name=name, daemon=True)
    thread.start()
    return thread
