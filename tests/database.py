"""Helpers for tests of the durable record: a database of its own per test."""

from __future__ import annotations

import os
import signal
import time
import uuid
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path

import psycopg
import pytest
from psycopg import sql

from vidqueue import services
from vidqueue.migrate import migrate
from vidqueue.services import Service
from vidqueue.settings import Settings


@contextmanager
def fresh_database(server: Service) -> Iterator[str]:
    """A new, empty database on `server`, dropped afterwards; yields its URL."""
    name = f"test_{uuid.uuid4().hex[:12]}"
    with psycopg.connect(server.url, autocommit=True) as conn:
        conn.execute(sql.SQL("create database {}").format(sql.Identifier(name)))
    try:
        yield server.url.rsplit("/", 1)[0] + "/" + name
    finally:
        with psycopg.connect(server.url, autocommit=True) as conn:
            conn.execute(
                sql.SQL("drop database {} with (force)").format(sql.Identifier(name))
            )


def use_database(
    settings: Settings, database_url: str, monkeypatch: pytest.MonkeyPatch
) -> Settings:
    """`settings` with the durable record in `database_url`, migrated.

    Also exported to the environment, where the in-process worker reads it.
    """
    from processor import job

    migrate(database_url)
    monkeypatch.setenv("VIDQUEUE_DATABASE_URL", database_url)
    job._context.cache_clear()
    return settings.replace(database_url=database_url)


def wait_for(check: Callable[[], object], timeout_s: float = 60) -> None:
    """Return once `check()` is true; fail the test after `timeout_s`."""
    deadline = time.monotonic() + timeout_s
    while not check():
        assert time.monotonic() < deadline, "the condition never came true"
        time.sleep(0.05)


class Database:
    """A Postgres of its own, which a test or a soak can stop and start again."""

    def __init__(self, data_dir: Path):
        self.data_dir = data_dir
        self.service = services.start_postgres(data_dir)
        self.port = self.service.port

    def stop(self) -> None:
        """Stop at once, closing client connections (Postgres's fast shutdown)."""
        pid = int((self.data_dir / "postmaster.pid").read_text().split()[0])
        os.kill(pid, signal.SIGINT)
        self.service.process.wait(timeout=30)

    def start(self) -> None:
        """Start again on the same data folder and port."""
        self.service = services.start_postgres(self.data_dir, port=self.port)
