"""Storage that fails while a worker reads a source: the video comes out whole."""

from __future__ import annotations

import pytest

from tests.faults import FaultyProxy
from tests.integration.test_worker import submit
from tests.media import ffprobe

pytestmark = pytest.mark.integration


def duration_of(url: str) -> float:
    return float(ffprobe(url)["format"]["duration"])


def test_a_source_cut_mid_transfer_is_read_to_its_end(
    ctx, clip, run_worker, proxy: FaultyProxy
):
    job_id = submit(ctx, clip)
    proxy.fail(error_rate=0.0, cut_rate=1.0, methods=("GET",))

    run_worker()

    proxy.heal()
    record = ctx.records.get(job_id)
    assert record.state == "completed", record.failed_reason
    assert proxy.tally.cut > 0
    # ffmpeg took each cut for the end of the file before it reconnected.
    assert duration_of(record.result["video_url"]) == pytest.approx(
        duration_of(clip), abs=0.1
    )


def test_storage_answering_503_for_a_moment_costs_no_attempt(
    ctx, clip, run_worker, proxy: FaultyProxy
):
    job_id = submit(ctx, clip)
    proxy.fail(error_rate=1.0, seconds=3, methods=("GET",))

    run_worker()

    record = ctx.records.get(job_id)
    assert (record.state, record.attempts) == ("completed", 1), record.failed_reason
    assert proxy.tally.errors > 0
