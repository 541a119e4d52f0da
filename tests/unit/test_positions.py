"""Queue positions from sequence numbers, and time estimates from speed."""

from __future__ import annotations

import pytest

from api.jobs import Speed
from vidqueue.positions import ahead_from


@pytest.mark.parametrize(
    ("number", "total", "length", "ahead"),
    [
        (b"1", b"1", 1, 0),  # alone in the queue
        (b"5", b"5", 5, 4),  # last of five
        (b"3", b"5", 5, 2),  # two enqueued after it, five in the queue
        (b"3", b"5", 3, 0),  # two taken from the head: next
        (b"3", b"9", 7, 0),
        (b"3", b"9", 10, 3),  # an unnumbered job in the queue counts as ahead
    ],
)
def test_jobs_ahead_from_numbers(number, total, length, ahead):
    assert ahead_from(number, total, length) == ahead


@pytest.mark.parametrize(
    ("number", "total", "length"),
    [(None, b"5", 5), (b"5", None, 5), (b"1", b"9", 3), (b"1", b"1", 0)],
)
def test_answers_outside_the_queue_mean_walk_it(number, total, length):
    assert ahead_from(number, total, length) is None


def test_estimate_divides_work_by_speed_and_workers():
    speed = Speed(workers=2, video_seconds_per_job=30.0, realtime_factor=3.0)

    # (4 ahead + this one) x 30 s of video / (3 x 2 workers)
    assert speed.estimate(4) == 25
    assert speed.estimate(0) == 5
    assert Speed(1, 10.0, 4.0).estimate(0) == 3  # 2.5 s, rounded up
