"""A database outage in the middle of a job: jobs run on, the record catches up."""

from __future__ import annotations

import threading
import uuid
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from tests.database import Database, use_database, wait_for
from vidqueue import defaults
from vidqueue.durable.outbox import OutboxPump
from vidqueue.errors import DatabaseUnavailable

pytestmark = pytest.mark.integration


@pytest.fixture
def database(services_dir: Path) -> Iterator[Database]:
    database = Database(services_dir / f"postgres-{uuid.uuid4().hex[:8]}")
    yield database
    database.service.stop()


@pytest.fixture
def settings(settings, database, monkeypatch):
    return use_database(settings, database.service.url, monkeypatch)


@pytest.fixture
def pumping(ctx) -> Iterator[OutboxPump]:
    """An outbox pump running in the background, as in the poller."""
    pump = OutboxPump(ctx.redis, ctx.durable, interval_s=0.1, retry_max_s=0.5)
    stop = threading.Event()
    thread = threading.Thread(target=pump.run, args=(stop,))
    thread.start()
    yield pump
    stop.set()
    thread.join()
    ctx.durable.close()


def test_the_record_catches_up_after_an_outage_mid_job(
    api, ctx, clip, run_worker, database, pumping
):
    body = {
        "filename": clip.name,
        "contentType": "video/mp4",
        "size": clip.stat().st_size,
    }
    ticket = api.post("/uploads", json=body).json()
    job_id = ticket["jobId"]
    httpx.put(ticket["url"], headers=ticket["headers"], content=clip.read_bytes())
    api.post(f"/uploads/{job_id}/complete")
    wait_for(lambda: ctx.durable.fetch(job_id).state == "waiting")

    database.stop()
    run_worker()

    assert api.get(f"/status/{job_id}").json()["state"] == "completed"
    with pytest.raises(DatabaseUnavailable):
        ctx.durable.fetch(job_id)
    assert pumping.backlog() > 0

    database.start()

    wait_for(lambda: ctx.durable.fetch(job_id).state == "completed")
    row, record = ctx.durable.fetch(job_id), ctx.records.get(job_id)
    assert (row.progress, row.version, row.result) == (
        100,
        record.version,
        record.result,
    )
    wait_for(lambda: ctx.redis.xlen(defaults.OUTBOX_KEY) == 0)
