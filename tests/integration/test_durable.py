"""The durable record on a real Postgres: outbox, order, status fallback, reconcile."""

from __future__ import annotations

import os
import subprocess
import sys
import threading
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from handlers.poller import poll_once
from handlers.trigger import Outcome
from tests.database import fresh_database, use_database, wait_for
from vidqueue import defaults
from vidqueue.context import Context
from vidqueue.durable import start_background
from vidqueue.durable.outbox import OutboxPump
from vidqueue.records import JobRecord, new_job_id

pytestmark = pytest.mark.integration


@pytest.fixture
def database_url(postgres_server) -> Iterator[str]:
    with fresh_database(postgres_server) as url:
        yield url


@pytest.fixture
def settings(settings, database_url, monkeypatch):
    """The test settings, with the durable record in a database of the test's own."""
    return use_database(settings, database_url, monkeypatch)


@pytest.fixture
def pump(ctx: Context) -> Iterator[OutboxPump]:
    yield OutboxPump(ctx.redis, ctx.durable)
    ctx.durable.close()


def new_record(ctx: Context, user_id: str = "u1") -> JobRecord:
    record = JobRecord(id=new_job_id(), user_id=user_id, filename="a.mp4")
    ctx.records.create(record)
    return record


def upload(api, clip: Path, announce: bool = True) -> str:
    """Upload `clip` through the API as a browser does; returns the job id."""
    body = {
        "filename": clip.name,
        "contentType": "video/mp4",
        "size": clip.stat().st_size,
    }
    ticket = api.post("/uploads", json=body).json()
    answer = httpx.request(
        ticket["method"],
        ticket["url"],
        headers=ticket["headers"],
        content=clip.read_bytes(),
    )
    assert answer.status_code == 200
    if announce:
        api.post(f"/uploads/{ticket['jobId']}/complete")
    return ticket["jobId"]


def test_a_job_lands_in_the_database_with_its_final_state(
    api, ctx, clip, run_worker, pump
):
    job_id = upload(api, clip)
    run_worker()

    pump.drain()

    row = ctx.durable.fetch(job_id)
    record = ctx.records.get(job_id)
    assert row.state == "completed"
    assert row.progress == 100
    assert row.result["width"] == 640
    assert row.result["video_url"] == record.result["video_url"]
    assert row.version == record.version
    assert row.finished_at == record.finished_at
    assert ctx.redis.xlen(defaults.OUTBOX_KEY) == 0


def test_many_changes_of_a_job_become_one_write(ctx, pump):
    records = [new_record(ctx) for _ in range(3)]
    for record in records:
        ctx.records.transition(record.id, "waiting", ("uploading",))
        ctx.records.transition(record.id, "active", ("waiting",))
        for percent in range(1, 100):
            ctx.records.update(record.id, progress=percent)

    assert pump.drain() == 3 * 102
    assert (pump.writes, pump.rows) == (1, 3)
    for record in records:
        row = ctx.durable.fetch(record.id)
        assert (row.state, row.progress, row.version) == ("active", 99, 101)


def test_a_late_progress_write_never_overwrites_the_final_state(ctx, pump):
    record = new_record(ctx)
    ctx.records.transition(record.id, "waiting", ("uploading",))
    ctx.records.transition(record.id, "active", ("waiting",))
    ctx.records.update(record.id, progress=40)
    late = ctx.records.get(record.id)
    ctx.records.transition(record.id, "completed", ("active",), progress=100)
    pump.drain()

    ctx.durable.upsert([late])

    row = ctx.durable.fetch(record.id)
    assert (row.state, row.progress) == ("completed", 100)


def test_a_stopped_pumps_changes_are_taken_over_in_order(ctx, pump):
    record = new_record(ctx)
    ctx.records.transition(record.id, "waiting", ("uploading",))
    ctx.records.transition(record.id, "active", ("waiting",))
    ctx.records.update(record.id, progress=30)
    # A pump read these four changes, then died before writing them.
    ctx.redis.xgroup_create(defaults.OUTBOX_KEY, defaults.OUTBOX_GROUP, id="0")
    read = ctx.redis.xreadgroup(
        defaults.OUTBOX_GROUP, "stopped", {defaults.OUTBOX_KEY: ">"}
    )
    assert len(read[0][1]) == 4

    ctx.records.transition(record.id, "completed", ("active",), progress=100)
    pump.drain()
    assert ctx.durable.fetch(record.id).state == "completed"

    taker = OutboxPump(ctx.redis, ctx.durable, consumer="taker", claim_idle_s=0)
    assert taker.drain() == 4

    row = ctx.durable.fetch(record.id)
    assert (row.state, row.progress) == ("completed", 100)
    assert ctx.redis.xlen(defaults.OUTBOX_KEY) == 0


def test_an_entry_that_is_no_record_does_not_hold_back_the_others(ctx, pump, caplog):
    junk = ctx.redis.xadd(defaults.OUTBOX_KEY, {"id": "x", "progress": "lots"})
    record = new_record(ctx)

    assert pump.drain() == 2

    assert ctx.durable.fetch(record.id).state == "uploading"
    assert ctx.redis.xlen(defaults.OUTBOX_KEY) == 0
    assert f"outbox entry {junk.decode()} is not a job record" in caplog.text


def test_entries_stay_until_every_consumer_group_has_them(ctx, pump):
    ctx.redis.xgroup_create(defaults.OUTBOX_KEY, "webhooks", id="0", mkstream=True)
    record = new_record(ctx)
    ctx.records.transition(record.id, "waiting", ("uploading",))

    pump.drain()
    assert ctx.redis.xlen(defaults.OUTBOX_KEY) == 2

    entries = ctx.redis.xreadgroup("webhooks", "w1", {defaults.OUTBOX_KEY: ">"})
    ids = [entry_id for entry_id, _ in entries[0][1]]
    snapshot = JobRecord.from_redis(entries[0][1][-1][1])
    assert (snapshot.id, snapshot.state, snapshot.version) == (record.id, "waiting", 1)
    ctx.redis.xack(defaults.OUTBOX_KEY, "webhooks", *ids)
    ctx.records.update(record.id, progress=5)
    pump.drain()

    assert ctx.redis.xlen(defaults.OUTBOX_KEY) == 1  # the webhooks' next one


def test_without_a_database_the_outbox_stays_empty(redis_server, s3_server, tmp_path):
    from vidqueue.settings import Settings

    plain = Context(Settings(redis_url=redis_server.url, data_dir=tmp_path))
    plain.redis.flushdb()
    record = new_record(plain)
    plain.records.transition(record.id, "waiting", ("uploading",))

    assert plain.durable is None
    assert plain.redis.exists(defaults.OUTBOX_KEY) == 0
    plain.redis.flushdb()


def test_status_comes_from_the_database_once_redis_forgot_the_job(
    api, ctx, clip, run_worker, pump
):
    job_id = upload(api, clip)
    run_worker()
    pump.drain()
    expected = api.get(f"/status/{job_id}").json()

    ctx.redis.flushdb()

    status = api.get(f"/status/{job_id}")
    assert status.status_code == 200
    assert {k: status.json()[k] for k in ("state", "progress", "result")} == {
        k: expected[k] for k in ("state", "progress", "result")
    }
    assert api.get(f"/status/{new_job_id()}").status_code == 404


def test_reconcile_completes_every_job_after_redis_is_flushed_mid_run(
    api, ctx, clip, settings, worker_process, pump
):
    running = [upload(api, clip) for _ in range(3)]
    arrived = upload(api, clip, announce=False)
    pump.drain()
    worker_process()
    wait_for(lambda: any(ctx.records.state_of(j) == "active" for j in running))
    pump.drain()
    unfinished = {row.id for row in ctx.durable.unfinished()}

    ctx.redis.flushdb()

    env = {**os.environ, **settings.to_env()}
    command = [sys.executable, "-m", "vidqueue.cli", "reconcile"]
    result = subprocess.run(command, env=env, capture_output=True, text=True)
    assert result.returncode == 0, result.stderr
    assert {line.strip() for line in result.stdout.splitlines()[1:]} == unfinished
    assert arrived in unfinished
    assert poll_once(ctx)[Outcome.ENQUEUED] == 1
    everyone = [*running, arrived]
    wait_for(lambda: all(ctx.records.state_of(j) == "completed" for j in everyone))
    pump.drain()
    for job_id in everyone:
        assert api.get(f"/status/{job_id}").json()["state"] == "completed"
        assert ctx.durable.fetch(job_id).state == "completed"


def test_the_poller_reconciles_at_start(ctx, pump):
    records = [new_record(ctx) for _ in range(2)]
    ctx.records.transition(records[0].id, "waiting", ("uploading",))
    pump.drain()
    ctx.redis.flushdb()

    stop = threading.Event()
    threads = start_background(ctx, stop)
    try:
        wait_for(lambda: all(ctx.records.get(r.id) for r in records))
    finally:
        stop.set()
        for thread in threads:
            thread.join()

    assert ctx.records.get(records[0].id).state == "waiting"
    assert ctx.queue.job_ids == [records[0].id]
    assert ctx.records.pending_uploads() == [records[1].id]
