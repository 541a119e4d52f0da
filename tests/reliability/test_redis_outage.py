"""Redis away for longer than its client's retries: the poller waits for it."""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from handlers.poller import run_poller
from tests.database import wait_for
from tests.system import RedisServer
from vidqueue.context import Context
from vidqueue.keys import upload_key
from vidqueue.records import JobRecord, new_job_id

pytestmark = pytest.mark.integration

OUTAGE_SECONDS = 8
"""Longer than redis-py's ten retries with their pauses (about 5 s at most)."""


@pytest.fixture
def own_redis(tmp_path: Path) -> Iterator[RedisServer]:
    """A redis-server of this test's own, so that it can stop and start."""
    redis = RedisServer(tmp_path / "redis")
    yield redis
    redis.service.stop()


def test_the_poller_outlives_a_redis_outage(ctx, clip, own_redis):
    ctx = Context(ctx.settings.replace(redis_url=own_redis.url))
    stop = threading.Event()
    poller = threading.Thread(target=run_poller, args=(ctx, stop))
    poller.start()

    own_redis.stop()
    time.sleep(OUTAGE_SECONDS)
    own_redis.start()

    job_id = new_job_id()
    key = upload_key("u1", job_id, clip.name)
    ctx.records.create(
        JobRecord(
            id=job_id, user_id="u1", source_bucket=ctx.storage.upload_bucket,
            source_key=key, filename=clip.name, size_bytes=clip.stat().st_size,
        )
    )  # fmt: skip
    ctx.storage.client.upload_file(str(clip), ctx.storage.upload_bucket, key)
    try:
        wait_for(lambda: ctx.records.state_of(job_id) == "waiting", timeout_s=30)
        assert poller.is_alive()
    finally:
        stop.set()
        poller.join(timeout=10)
