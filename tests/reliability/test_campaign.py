"""Twenty uploads while everything fails in turn: every job completes, once.

Through the public API, as a web page uploads, while three workers are
SIGKILLed at random moments (with their work-horses and ffmpeg), redis-server
restarts (AOF on), the database stops for 20 seconds and storage answers
errors and drops connections for a while. Each job must end `completed`
exactly once, with its whole video and poster in the output bucket, one row
in the durable record, and nothing may stay `waiting` or `active`.

How long it takes: a killed worker's job is found by another worker within
about 30 s (`VideoWorker`'s lease); with `VIDQUEUE_RETRY_SECONDS=0,2,5,10`
its retry goes back on the queue at once, so it does not wait for RQ's
scheduler, whose lock lives 61 s more when the dead worker held it. Faults
after that first retry back off a few seconds. `VIDQUEUE_CAMPAIGN_SEED`
replays a run's random choices (the seed is in the failure message).
"""

from __future__ import annotations

import os
import random
import threading
import time
import uuid
from collections.abc import Iterator
from pathlib import Path

import psycopg
import pytest
from redis import Redis

from tests.audit import History, audit_job
from tests.browser import Browser
from tests.media import make_clip
from tests.system import System, run_in_background

pytestmark = pytest.mark.integration

UPLOADS = 20
UPLOAD_GAP_SECONDS = 2.0
FAULT_WINDOW_SECONDS = (4.0, 36.0)
"""Faults start at random moments in this window (seconds after the first upload)."""
JOBS_TIMEOUT_SECONDS = 150.0
REDIS_GRACE_SECONDS = 15.0
"""How long after Redis is back a worker may still quit of the outage."""
CAMPAIGN_SETTINGS = {
    "retry_seconds": "0,2,5,10",
    "max_uploads_in_flight": 50,
    "max_uploads_per_minute": 100,
}


@pytest.fixture(scope="module")
def small_clip(tmp_path_factory) -> Path:
    """A 2-second 320x240 clip: quick to transcode on two cores."""
    folder = tmp_path_factory.mktemp("campaign")
    return make_clip(folder / "small.mp4", seconds=2, size="320x240")


@pytest.fixture
def system(services_dir: Path, s3_server) -> Iterator[System]:
    """A whole vidqueue with three workers, storage behind the fault proxy."""
    seed = int(os.environ.get("VIDQUEUE_CAMPAIGN_SEED") or random.randrange(10**6))
    folder = services_dir / f"campaign-{uuid.uuid4().hex[:8]}"
    with System(
        folder, workers=3, s3_url=s3_server.url, seed=seed, changes=CAMPAIGN_SETTINGS
    ) as system:
        yield system


@pytest.fixture
def history(system: System) -> Iterator[History]:
    """Every change of every job, read from the outbox while the test runs."""
    redis = Redis.from_url(system.settings.redis_url)
    history = History(redis)
    stop = threading.Event()
    thread = threading.Thread(target=history.run, args=(stop,), daemon=True)
    thread.start()
    yield history
    stop.set()
    thread.join(timeout=10)
    redis.close()


def schedule_faults(system: System) -> list[threading.Thread]:
    """Start each fault at a random moment of the window, in the background."""
    low, high = FAULT_WINDOW_SECONDS
    faults = [
        ("kill", system.kill_worker),
        ("kill", system.kill_worker),
        ("kill", system.kill_worker),
        ("redis", system.restart_redis),
        ("database", system.stop_database),
        (
            "storage",
            lambda: system.fail_storage(
                seconds=10, error_rate=0.3, drop_rate=0.05, cut_rate=0.1
            ),
        ),
    ]
    began = time.monotonic()
    threads = []
    for name, action in faults:
        at_s = system.random.uniform(low, high)

        def later(at_s=at_s, action=action) -> None:
            time.sleep(max(0.0, began + at_s - time.monotonic()))
            action()

        threads.append(run_in_background(f"fault-{name}", later))
    return threads


def unexplained_exits(system: System) -> list:
    """Roles that exited, but for workers while Redis was away.

    RQ's worker quits when Redis stays away past its client's retries, and
    systemd (here, the system's supervisor) starts it again.
    """
    away = [
        (e.at_s, e.at_s + e.seconds + REDIS_GRACE_SECONDS)
        for e in system.events
        if e.what.startswith("redis")
    ]
    return [
        e
        for e in system.exits
        if not (e.role.startswith("worker") and any(a <= e.at_s <= b for a, b in away))
    ]


def durable_rows(system: System) -> list[tuple[str, int]]:
    """How many rows of the `videos` table are in each state."""
    with psycopg.connect(system.settings.database_url) as conn:
        query = "select state, count(*) from videos group by state order by state"
        return [tuple(row) for row in conn.execute(query).fetchall()]


def test_nothing_is_lost_while_everything_fails(
    system: System, history: History, small_clip: Path
):
    browser = Browser(system.settings.base_url)
    faults = schedule_faults(system)
    jobs = []
    for _ in range(UPLOADS):
        jobs.append(browser.upload(small_clip))
        time.sleep(UPLOAD_GAP_SECONDS)

    deadline = time.monotonic() + JOBS_TIMEOUT_SECONDS
    statuses = [
        browser.wait(job_id, max(1.0, deadline - time.monotonic())) for job_id in jobs
    ]
    for thread in faults:
        thread.join(timeout=60)
    system.proxy.heal()
    history.catch_up()

    audits = [audit_job(system.ctx, history, s, small_clip) for s in statuses]
    problems = [problem for audit in audits for problem in audit.problems]
    figures = browser.patiently(browser.client.queue_info)
    browser.close()
    published = {
        key for key, _ in system.ctx.storage.list_objects(
            system.settings.output_bucket, ""
        )
    }  # fmt: skip
    context = f"seed {system.seed}, faults {system.events}"
    assert problems == [], context
    assert (figures["waiting"], figures["active"]) == (0, 0), context
    assert (figures["completed"], figures["total"]) == (UPLOADS, UPLOADS), context
    assert len(published) == 2 * UPLOADS, context  # one video and one poster each
    assert durable_rows(system) == [("completed", UPLOADS)], context
    assert unexplained_exits(system) == [], context
    assert len([e for e in system.events if e.what.startswith("SIGKILL")]) == 3
    assert system.proxy.tally.errors > 0, context
