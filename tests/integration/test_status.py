"""Queue positions, time estimates and the caller's list of jobs."""

from __future__ import annotations

import pytest

from api.jobs import create_upload
from vidqueue import defaults
from vidqueue.positions import jobs_ahead
from vidqueue.queue import enqueue_video

pytestmark = pytest.mark.integration


def waiting_jobs(ctx, count: int) -> list[str]:
    """`count` jobs moved to `waiting` and enqueued, oldest first."""
    ids = []
    for n in range(count):
        record = create_upload(ctx, "local", f"v{n}.mp4", "video/mp4", 100)
        ctx.records.transition(record.id, "waiting", ("uploading",))
        enqueue_video(ctx.queue, record.id, ctx.settings)
        ids.append(record.id)
    return ids


def lpos_calls(ctx) -> int:
    stats = ctx.redis.info("commandstats")
    return stats.get("cmdstat_lpos", {}).get("calls", 0)


def test_positions_follow_the_queue(api, ctx):
    ids = waiting_jobs(ctx, 5)

    before = [api.get(f"/status/{i}").json()["queuePosition"] for i in ids]
    ctx.redis.lpop(ctx.queue.key, 2)  # two workers take the first two jobs
    after = [jobs_ahead(ctx.queue, i) for i in ids[2:]]
    late = waiting_jobs(ctx, 1)[0]

    assert before == [0, 1, 2, 3, 4]
    assert after == [0, 1, 2]
    assert api.get(f"/status/{late}").json()["queuePosition"] == 3


def test_positions_on_a_long_queue_never_walk_it(ctx):
    # Twenty thousand jobs enqueued the way enqueue_video numbers them.
    with ctx.redis.pipeline(transaction=False) as pipe:
        for n in range(20_000):
            pipe.rpush(ctx.queue.key, f"job-{n}")
            pipe.incr(defaults.ENQUEUED_TOTAL_KEY)
        pipe.execute()
    mine = waiting_jobs(ctx, 1)[0]
    calls = lpos_calls(ctx)

    assert jobs_ahead(ctx.queue, mine) == 20_000
    ctx.redis.lpop(ctx.queue.key, 1500)
    assert jobs_ahead(ctx.queue, mine) == 18_500
    assert lpos_calls(ctx) == calls


def test_a_job_without_a_number_is_found_by_walking(ctx):
    ids = waiting_jobs(ctx, 3)
    ctx.redis.rpush(ctx.queue.key, "put-back-by-rq")
    ctx.redis.hdel(defaults.job_key(ids[2]), defaults.QUEUE_SEQ_FIELD)

    assert jobs_ahead(ctx.queue, ids[2]) == 2
    assert jobs_ahead(ctx.queue, "not-queued") is None


def test_estimates_come_from_measured_speed(api, ctx):
    ids = waiting_jobs(ctx, 4)
    # One job so far: 10 s of video in 5 s, a realtime factor of 2.
    ctx.records.record_throughput(10.0, 5.0)

    estimates = [api.get(f"/status/{i}").json()["estimatedTime"] for i in ids]

    # (jobs ahead + 1) x 10 s of video / (2 x 1 worker)
    assert estimates == [5, 10, 15, 20]


def test_estimates_before_any_measurement(api, ctx):
    job_id = waiting_jobs(ctx, 2)[1]

    status = api.get(f"/status/{job_id}").json()

    assert status["queuePosition"] == 1
    assert status["estimatedTime"] == 60


def test_the_callers_jobs_newest_first(api, ctx):
    made = [api.post("/uploads", json={
        "filename": f"{n}.mp4", "contentType": "video/mp4", "size": 10,
    }).json()["jobId"] for n in range(3)]  # fmt: skip

    listed = api.get("/jobs").json()["jobs"]
    two = api.get("/jobs", params={"limit": 2}).json()["jobs"]

    assert [job["jobId"] for job in listed] == list(reversed(made))
    assert listed[0]["state"] == "uploading"
    assert [job["jobId"] for job in two] == list(reversed(made))[:2]
    assert api.get("/jobs", params={"limit": 0}).status_code == 400
    assert api.get("/jobs", params={"limit": 101}).status_code == 400
