"""Cancelling and retrying jobs through the API, with a real worker."""

from __future__ import annotations

import subprocess
import time

import pytest

from tests.integration.test_worker import output_keys, submit
from tests.media import make_clip

pytestmark = pytest.mark.integration


def ffmpeg_running(job_id: str) -> bool:
    found = subprocess.run(["pgrep", "-f", f"vidqueue-{job_id}"], capture_output=True)
    return bool(found.stdout.strip())


def wait_for(check, timeout_s: float = 60) -> None:
    deadline = time.monotonic() + timeout_s
    while not check():
        assert time.monotonic() < deadline, "condition never became true"
        time.sleep(0.05)


def test_cancel_a_waiting_job_takes_it_off_the_queue(api, ctx, clip, run_worker):
    job_id = submit(ctx, clip, user="local")

    answer = api.delete(f"/jobs/{job_id}")

    assert answer.status_code == 200
    assert answer.json()["state"] == "cancelled"
    assert len(ctx.queue) == 0
    run_worker()
    assert ctx.records.get(job_id).state == "cancelled"


def test_cancel_a_running_job_stops_ffmpeg_and_removes_outputs(
    api, ctx, media_dir, worker_process
):
    source = make_clip(media_dir / "cancel.mp4", seconds=20, size="1280x720")
    job_id = submit(ctx, source, user="local")
    worker_process()
    wait_for(lambda: (ctx.records.get(job_id).progress or 0) > 6)

    answer = api.delete(f"/jobs/{job_id}")

    assert answer.json()["state"] == "cancelled"
    wait_for(lambda: not ffmpeg_running(job_id), timeout_s=10)
    wait_for(lambda: ctx.queue.started_job_registry.count == 0, timeout_s=10)
    record = ctx.records.get(job_id)
    assert record.state == "cancelled"
    assert record.progress < 90
    assert output_keys(ctx, job_id) == []


def test_an_ended_job_cannot_be_cancelled(api, ctx, clip, run_worker):
    job_id = submit(ctx, clip, user="local")
    run_worker()

    answer = api.delete(f"/jobs/{job_id}")

    assert answer.status_code == 409
    assert "completed" in answer.json()["detail"]


def test_retry_a_failed_job_after_fixing_its_cause(
    api, ctx, clip, run_worker, monkeypatch
):
    monkeypatch.setenv("VIDQUEUE_MAX_DURATION_SECONDS", "1")
    from processor import job

    job._context.cache_clear()
    job_id = submit(ctx, clip, user="local")
    run_worker()
    assert ctx.records.get(job_id).state == "failed"

    monkeypatch.setenv("VIDQUEUE_MAX_DURATION_SECONDS", "60")
    job._context.cache_clear()
    answer = api.post(f"/jobs/{job_id}/retry")
    run_worker()

    assert answer.status_code == 200
    assert answer.json()["state"] == "waiting"
    status = api.get(f"/status/{job_id}").json()
    assert status["state"] == "completed"
    assert status["failedReason"] is None


def test_only_ended_jobs_can_be_retried(api, ctx, clip):
    job_id = submit(ctx, clip, user="local")

    answer = api.post(f"/jobs/{job_id}/retry")

    assert answer.status_code == 409
