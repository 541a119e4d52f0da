"""An attempt that another attempt overtook stops, and leaves the outputs be.

Two attempts at one job run at once when the first one's worker loses its
lease while its work-horse runs on (the worker process died or froze, Redis
went away): RQ hands the job to another worker. Whichever completes first
publishes the outputs; the other must stop without deleting them.
"""

from __future__ import annotations

import threading

import pytest

from processor.publish import publish_folder
from tests.database import wait_for
from tests.integration.test_worker import output_keys, submit
from tests.media import make_clip
from vidqueue.keys import output_prefix
from vidqueue.records import utcnow

pytestmark = pytest.mark.integration


@pytest.fixture(scope="module")
def slow_clip(tmp_path_factory):
    """A clip that takes a worker several seconds to transcode."""
    folder = tmp_path_factory.mktemp("superseded")
    return make_clip(folder / "slow.mp4", seconds=20, size="1280x720")


def test_an_overtaken_attempt_leaves_the_outputs_of_the_job(
    ctx, slow_clip, run_worker, tmp_path
):
    job_id = submit(ctx, slow_clip)

    def other_attempt_completes() -> None:
        # Another worker's attempt at the same job publishes and completes it.
        wait_for(lambda: ctx.records.get(job_id).progress > 6)
        made = tmp_path / "outputs"
        made.mkdir()
        (made / "video.mp4").write_bytes(b"the other attempt's video")
        (made / "poster.jpg").write_bytes(b"the other attempt's poster")
        publish_folder(ctx.storage, made, output_prefix("u1", job_id))
        ctx.records.transition(
            job_id, "completed", ("active",), progress=100, finished_at=utcnow()
        )

    other = threading.Thread(target=other_attempt_completes)
    other.start()
    run_worker()  # this attempt, overtaken while it transcodes
    other.join(timeout=60)

    assert ctx.records.state_of(job_id) == "completed"
    assert output_keys(ctx, job_id) == [
        f"v/u1/{job_id}/poster.jpg",
        f"v/u1/{job_id}/video.mp4",
    ]
