"""The local system: its own servers where none are configured, and every role.

`vidqueue dev` starts redis-server and an S3 server (moto's) unless
`VIDQUEUE_REDIS_URL` / `VIDQUEUE_S3_ENDPOINT` point elsewhere, creates the
buckets, then runs the API, the poller, the worker and a worker for webhook
deliveries (`ROLES`) as child processes until Ctrl-C or SIGTERM, when it
stops all of them, newest first. Unless a database
is configured, it also starts Postgres, where installed, with the migrations
applied, for the durable record (`vidqueue.durable.local` says where its
cluster lives).
"""

from __future__ import annotations

import logging
import os
import signal
import subprocess
import sys
import threading
import time

import httpx

from vidqueue import defaults, services
from vidqueue.durable import durable_configured
from vidqueue.durable.local import start_local_database
from vidqueue.services import Service
from vidqueue.settings import Settings
from vidqueue.storage import Storage

logger = logging.getLogger("vidqueue.dev")

LOCAL_S3_KEY = "vidqueue-local"
LOCAL_S3_SECRET = "vidqueue-local-secret"  # noqa: S105 - moto accepts any key
ROLES = {
    "api": ("api",),
    "poller": ("poller",),
    "worker": ("worker",),
    "webhooks": ("worker", "--queue", defaults.WEBHOOK_QUEUE_NAME),
}
"""Each role's process: the `vidqueue` command's arguments."""


class LocalSystem:
    """Servers and role processes of one local vidqueue."""

    def __init__(self, settings: Settings):
        self.settings = settings
        self.services: list[Service] = []
        self.roles: dict[str, subprocess.Popen] = {}
        self.stopping = threading.Event()

    def start_services(self) -> Settings:
        """Start what is not configured; returns the settings that point at them."""
        data_dir = self.settings.data_dir.resolve()
        changes: dict[str, object] = {}
        if not self.settings.redis_url:
            redis = services.start_redis(data_dir / "redis", aof=True)
            self.services.append(redis)
            changes["redis_url"] = redis.url
        if not self.settings.s3_endpoint:
            s3 = services.start_s3(data_dir / "s3")
            self.services.append(s3)
            changes.update(
                s3_endpoint=s3.url,
                s3_access_key=self.settings.s3_access_key or LOCAL_S3_KEY,
                s3_secret_key=self.settings.s3_secret_key or LOCAL_S3_SECRET,
            )
        if not durable_configured(self.settings):
            postgres = start_local_database(data_dir)
            if postgres is not None:
                self.services.append(postgres)
                changes["database_url"] = postgres.url
        self.settings = self.settings.replace(**changes)
        Storage(self.settings).ensure_buckets()
        return self.settings

    def start_roles(self) -> None:
        """Run the API, the poller, the worker and the webhooks' worker."""
        env = {**os.environ, **self.settings.to_env()}
        for role, arguments in ROLES.items():
            command = [sys.executable, "-m", "vidqueue.cli", *arguments]
            self.roles[role] = subprocess.Popen(command, env=env)
            logger.info("%s started (pid %d)", role, self.roles[role].pid)

    def wait_until_serving(self, timeout_s: float = 60) -> bool:
        """Wait until the API answers `/healthz`; False if a role died first."""
        deadline = time.monotonic() + timeout_s
        url = f"{self.settings.base_url}/healthz"
        while time.monotonic() < deadline and not self.stopping.is_set():
            if any(p.poll() is not None for p in self.roles.values()):
                return False
            try:
                if httpx.get(url, timeout=1).status_code == 200:
                    return True
            except httpx.HTTPError:
                pass
            time.sleep(0.2)
        return False

    def watch(self) -> int:
        """Wait until asked to stop or until a role exits; returns the exit code."""
        while not self.stopping.wait(0.5):
            for role, process in self.roles.items():
                if process.poll() is not None:
                    logger.error(
                        "%s exited with code %d; stopping", role, process.returncode
                    )
                    return 1
        return 0

    def stop(self) -> None:
        """Stop the roles, then the servers, newest first."""
        for process in reversed(list(self.roles.values())):
            if process.poll() is None:
                process.send_signal(signal.SIGTERM)
        for role, process in reversed(list(self.roles.items())):
            try:
                process.wait(timeout=20)
            except subprocess.TimeoutExpired:
                logger.warning("%s did not stop in time; killing it", role)
                process.kill()
                process.wait()
        for service in reversed(self.services):
            service.stop()


def run_dev(settings: Settings) -> int:
    """Run the whole system locally until Ctrl-C or SIGTERM."""
    system = LocalSystem(settings)

    def request_stop(signum, _frame) -> None:
        logger.info("received %s, stopping", signal.Signals(signum).name)
        system.stopping.set()

    signal.signal(signal.SIGINT, request_stop)
    signal.signal(signal.SIGTERM, request_stop)
    try:
        settings = system.start_services()
        system.start_roles()
        if not system.wait_until_serving():
            logger.error("the API did not start; see the lines above")
            return 1
        print(
            f"vidqueue is running at {settings.base_url}/  (Ctrl-C stops it)",
            flush=True,
        )
        return system.watch()
    finally:
        system.stop()
        logger.info("local system stopped")
