"""Workers that die, stop or share a queue: every job completes exactly once."""

from __future__ import annotations

import signal
import time

import pytest

from tests.integration.test_worker import output_keys, submit
from tests.media import make_clip
from tests.processes import kill_tree

pytestmark = pytest.mark.integration


def wait_for(check, timeout_s: float, what: str) -> None:
    deadline = time.monotonic() + timeout_s
    while not check():
        assert time.monotonic() < deadline, f"{what} did not happen in {timeout_s} s"
        time.sleep(0.1)


@pytest.fixture(scope="module")
def slow_clip(tmp_path_factory):
    """A clip that takes a worker several seconds to transcode."""
    folder = tmp_path_factory.mktemp("slow")
    return make_clip(folder / "slow.mp4", seconds=20, size="1280x720")


def test_job_of_a_killed_worker_is_completed_by_another(ctx, slow_clip, worker_process):
    first = worker_process()
    job_id = submit(ctx, slow_clip)
    wait_for(lambda: ctx.records.get(job_id).progress > 6, 60, "transcoding")

    kill_tree(first.pid)  # the worker, its work-horse and ffmpeg, as OOM or a crash
    first.wait()
    worker_process()

    # Found in about 30 s; the retry then waits for the scheduler's lock that
    # the dead worker held (61 s in RQ), then transcodes again.
    wait_for(lambda: ctx.records.state_of(job_id) == "completed", 180, "completion")
    record = ctx.records.get(job_id)
    assert record.attempts == 2
    assert record.progress == 100
    assert output_keys(ctx, job_id) == [
        f"v/u1/{job_id}/poster.jpg",
        f"v/u1/{job_id}/video.mp4",
    ]


def test_sigterm_lets_the_current_job_finish(ctx, clip, worker_process):
    worker = worker_process()
    job_id = submit(ctx, clip)
    wait_for(lambda: ctx.records.state_of(job_id) == "active", 30, "start")

    worker.send_signal(signal.SIGTERM)
    code = worker.wait(timeout=120)

    assert code == 0
    record = ctx.records.get(job_id)
    assert (record.state, record.attempts) == ("completed", 1)


def test_two_workers_share_the_queue_and_run_each_job_once(ctx, clip, worker_process):
    worker_process()
    worker_process()
    jobs = [submit(ctx, clip) for _ in range(4)]

    wait_for(
        lambda: all(ctx.records.state_of(j) == "completed" for j in jobs), 120, "all"
    )

    assert [ctx.records.get(j).attempts for j in jobs] == [1, 1, 1, 1]
    workers = {ctx.queue.fetch_job(j).worker_name for j in jobs}
    assert len(workers) == 2
