"""Local servers for development and tests: redis-server, an S3 server, Postgres.

Each starts on a free loopback port, waits until it answers, and stops with
`stop()`. The local system (`vidqueue dev`) and the test fixtures both use them.
"""

from __future__ import annotations

import logging
import os
import shutil
import socket
import subprocess
import sys
import time
import urllib.request
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

from vidqueue.errors import ConfigError

logger = logging.getLogger("vidqueue.services")

START_TIMEOUT_SECONDS = 30.0


def free_port() -> int:
    """A TCP port on 127.0.0.1 that nothing listens on right now."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


@dataclass
class Service:
    """A server process started by vidqueue."""

    name: str
    url: str
    port: int
    process: subprocess.Popen
    stop_hook: Callable[[], None] | None = field(default=None, repr=False)

    def stop(self, timeout_s: float = 10.0) -> None:
        """Ask the server to stop, and kill it if it does not within `timeout_s`."""
        if self.stop_hook is not None:
            self.stop_hook()
        if self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(timeout_s)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()
        logger.info("%s stopped", self.name)


def require_binary(name: str, package: str) -> str:
    """The path of an executable, or a `ConfigError` saying what to install."""
    path = shutil.which(name) or _postgres_binary(name)
    if path is None:
        raise ConfigError(
            f"{name} not found: install the Debian package {package} "
            "(scripts/bootstrap.sh does)"
        )
    return path


def _postgres_binary(name: str) -> str | None:
    for candidate in sorted(
        Path("/usr/lib/postgresql").glob(f"*/bin/{name}"), reverse=True
    ):
        return str(candidate)
    return None


def start_redis(data_dir: Path, port: int | None = None, aof: bool = True) -> Service:
    """A redis-server on loopback keeping its files in `data_dir`.

    With `aof` on, every write is appended and synced each second, as the queue
    wants in production; tests turn it off for speed.
    """
    binary = require_binary("redis-server", "redis-server")
    data_dir.mkdir(parents=True, exist_ok=True)
    port = port or free_port()
    args = [
        binary, "--port", str(port), "--bind", "127.0.0.1", "--dir", str(data_dir),
        "--save", "", "--appendonly", "yes" if aof else "no",
        "--maxmemory-policy", "noeviction", "--daemonize", "no",
    ]  # fmt: skip
    with (data_dir / "redis.log").open("ab") as log:
        process = subprocess.Popen(args, stdout=log, stderr=subprocess.STDOUT)
    url = f"redis://127.0.0.1:{port}/0"
    _wait_until(lambda: _redis_answers(port), "redis-server", process)
    logger.info("redis-server listening on 127.0.0.1:%d", port)
    return Service("redis-server", url, port, process)


def start_s3(log_dir: Path, port: int | None = None) -> Service:
    """moto's S3 server on loopback (objects live in its memory)."""
    log_dir.mkdir(parents=True, exist_ok=True)
    port = port or free_port()
    args = [sys.executable, "-m", "moto.server", "-H", "127.0.0.1", "-p", str(port)]
    env = {**os.environ, "MOTO_ALLOW_NONEXISTENT_REGION": "true"}
    with (log_dir / "s3.log").open("ab") as log:
        process = subprocess.Popen(args, stdout=log, stderr=subprocess.STDOUT, env=env)
    url = f"http://127.0.0.1:{port}"
    _wait_until(lambda: _http_answers(url + "/moto-api/"), "S3 server", process)
    logger.info("S3 server listening on %s", url)
    return Service("s3-server", url, port, process)


def start_postgres(data_dir: Path, port: int | None = None) -> Service:
    """A Postgres cluster in `data_dir`, created on first use, on loopback.

    Postgres refuses to run as root, so as root the cluster belongs to the
    `postgres` user and its commands run through `runuser`.
    """
    initdb = require_binary("initdb", "postgresql")
    postgres = require_binary("postgres", "postgresql")
    as_user = _postgres_user_prefix(data_dir)
    port = port or free_port()

    if not (data_dir / "PG_VERSION").exists():
        data_dir.mkdir(parents=True, exist_ok=True)
        _hand_to_postgres_user(data_dir, as_user)
        subprocess.run(
            [*as_user, initdb, "-D", str(data_dir), "-U", "postgres",
             "--auth=trust", "-E", "UTF8", "--no-sync"],
            check=True, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE,
        )  # fmt: skip

    args = [
        *as_user, postgres, "-D", str(data_dir), "-p", str(port),
        "-c", "listen_addresses=127.0.0.1", "-c", f"unix_socket_directories={data_dir}",
        "-c", "fsync=off", "-c", "max_connections=100",
    ]  # fmt: skip
    with (data_dir / "postgres.log").open("ab") as log:
        process = subprocess.Popen(args, stdout=log, stderr=subprocess.STDOUT)
    url = f"postgresql://postgres@127.0.0.1:{port}/postgres"
    _wait_until(lambda: _tcp_answers(port), "postgres", process)
    time.sleep(0.3)
    logger.info("postgres listening on 127.0.0.1:%d", port)
    return Service("postgres", url, port, process)


def _postgres_user_prefix(data_dir: Path) -> list[str]:
    if os.geteuid() != 0:
        return []
    return ["runuser", "-u", "postgres", "--"]


def _hand_to_postgres_user(data_dir: Path, as_user: list[str]) -> None:
    if not as_user:
        data_dir.chmod(0o700)
        return
    shutil.chown(data_dir, "postgres", "postgres")
    data_dir.chmod(0o700)
    # The postgres user must be able to walk down to its folder.
    for parent in data_dir.parents:
        if parent == Path("/"):
            break
        mode = parent.stat().st_mode
        if not mode & 0o001:
            raise ConfigError(
                f"the postgres user cannot reach {data_dir}: {parent} is not "
                "searchable by others; choose a data folder under /var/tmp or /tmp"
            )


def _wait_until(
    check: Callable[[], bool], name: str, process: subprocess.Popen
) -> None:
    deadline = time.monotonic() + START_TIMEOUT_SECONDS
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise ConfigError(f"{name} exited with code {process.returncode} at start")
        if check():
            return
        time.sleep(0.1)
    process.kill()
    raise ConfigError(f"{name} did not answer within {START_TIMEOUT_SECONDS:.0f} s")


def _tcp_answers(port: int) -> bool:
    try:
        with socket.create_connection(("127.0.0.1", port), timeout=0.5):
            return True
    except OSError:
        return False


def _redis_answers(port: int) -> bool:
    try:
        with socket.create_connection(("127.0.0.1", port), timeout=0.5) as sock:
            sock.sendall(b"PING\r\n")
            return sock.recv(16).startswith(b"+PONG")
    except OSError:
        return False


def _http_answers(url: str) -> bool:
    try:
        with urllib.request.urlopen(url, timeout=0.5):  # noqa: S310 - loopback URL
            return True
    except OSError:
        return False
