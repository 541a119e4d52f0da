"""Fixtures that start real services on free ports and clean up after themselves.

Session-wide: a redis-server and moto's S3 server. Per test: a fresh Redis
database (flushed before and after), the buckets, and settings pointing at them.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import tempfile
import time
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest
from rq import Worker

from tests.media import make_clip
from vidqueue import services
from vidqueue.context import Context
from vidqueue.settings import Settings
from vidqueue.storage import Storage

TEST_S3_KEY = "test-key"
TEST_S3_SECRET = "test-secret"


@pytest.fixture(scope="session")
def services_dir() -> Iterator[Path]:
    """A folder for the session's servers, readable by the postgres user."""
    path = Path(tempfile.mkdtemp(prefix="vidqueue-test-"))
    path.chmod(0o755)
    yield path
    shutil.rmtree(path, ignore_errors=True)


@pytest.fixture(scope="session")
def redis_server(services_dir: Path) -> Iterator[services.Service]:
    """A redis-server for the whole session."""
    service = services.start_redis(services_dir / "redis", aof=False)
    yield service
    service.stop()


@pytest.fixture(scope="session")
def s3_server(services_dir: Path) -> Iterator[services.Service]:
    """moto's S3 server for the whole session."""
    service = services.start_s3(services_dir / "s3")
    yield service
    service.stop()


@pytest.fixture(scope="session")
def postgres_server(services_dir: Path) -> Iterator[services.Service]:
    """A Postgres cluster for the whole session."""
    service = services.start_postgres(services_dir / "postgres")
    yield service
    service.stop()


@pytest.fixture
def settings(
    redis_server: services.Service,
    s3_server: services.Service,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> Iterator[Settings]:
    """Settings on the session's servers, also exported to the environment.

    Each test gets buckets of its own, so no object of one test shows in
    another's listing. The worker reads its settings from the environment, as
    in production, so an in-process worker sees the same ones.
    """
    suffix = uuid.uuid4().hex[:12]
    settings = Settings(
        redis_url=redis_server.url,
        s3_endpoint=s3_server.url,
        upload_bucket=f"uploads-{suffix}",
        output_bucket=f"videos-{suffix}",
        s3_access_key=TEST_S3_KEY,
        s3_secret_key=TEST_S3_SECRET,
        data_dir=tmp_path / "data",
        poll_interval_seconds=0.2,
        api_port=services.free_port(),
    )
    for name in [n for n in os.environ if n.startswith("VIDQUEUE_")]:
        monkeypatch.delenv(name)
    for name, value in settings.to_env().items():
        monkeypatch.setenv(name, value)
    Storage(settings).ensure_buckets()
    _reset_worker_context()
    ctx = Context(settings)
    ctx.redis.flushdb()
    yield settings
    ctx.redis.flushdb()
    _reset_worker_context()


def _reset_worker_context() -> None:
    from processor import job

    job._context.cache_clear()


@pytest.fixture
def ctx(settings: Settings) -> Context:
    """A context on the test settings."""
    return Context(settings)


@pytest.fixture(scope="session")
def media_dir() -> Iterator[Path]:
    """A folder of generated media shared by the session."""
    path = Path(tempfile.mkdtemp(prefix="vidqueue-media-"))
    yield path
    shutil.rmtree(path, ignore_errors=True)


@pytest.fixture(scope="session")
def clip(media_dir: Path) -> Path:
    """A 2-second 640x360 25 fps MP4 with sound."""
    return make_clip(media_dir / "clip.mp4", seconds=2.0, size="640x360", rate=25)


@pytest.fixture
def run_worker(ctx: Context):
    """Run the worker in this process until the queue is empty (RQ burst mode).

    Returns the function; call it after enqueuing. SimpleWorker runs jobs in
    the test's own process, with the same code path as `vidqueue worker`.
    """
    from rq import SimpleWorker

    def run() -> None:
        worker = SimpleWorker([ctx.queue], connection=ctx.redis)
        worker.work(burst=True, with_scheduler=False)

    return run


@pytest.fixture
def worker_process(settings: Settings, tmp_path: Path):
    """Start real `vidqueue worker` processes; all are stopped after the test.

    Call it to start one (it returns the process); it waits until the worker
    has registered with Redis. Each worker leads a process group of its own
    (with its work-horse and ffmpeg), so a test can kill all of it at once.
    """
    started: list[subprocess.Popen] = []

    def start(**changes) -> subprocess.Popen:
        env = {**os.environ, **settings.replace(**changes).to_env()}
        with (tmp_path / f"worker-{len(started)}.log").open("ab") as log:
            process = subprocess.Popen(
                [sys.executable, "-m", "vidqueue.cli", "worker"],
                env=env, stdout=log, stderr=subprocess.STDOUT,
                start_new_session=True,
            )  # fmt: skip
        started.append(process)
        ctx = Context(settings)
        before = Worker.count(queue=ctx.queue)
        deadline = time.monotonic() + 30
        while Worker.count(queue=ctx.queue) <= before:
            assert process.poll() is None, "the worker exited at start"
            assert time.monotonic() < deadline, "the worker did not register"
            time.sleep(0.05)
        return process

    yield start
    for process in started:
        if process.poll() is None:
            process.terminate()
    for process in started:
        try:
            process.wait(timeout=30)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()


@pytest.fixture
def api(ctx: Context):
    """An HTTP client of the API application (in-process ASGI, real services)."""
    from litestar.testing import TestClient

    from api.app import create_app

    with TestClient(create_app(ctx)) as client:
        yield client
