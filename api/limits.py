"""Per-user upload limits: uploads in flight and uploads started per minute.

Both live in Redis, so every API process enforces the same limits:

- Uploads in flight: a sorted set per user of the jobs whose bytes may still
  arrive, scored by when their presigned requests expire. A job leaves it
  when its state is no longer `uploading`, or when nothing can upload to it
  any more (its signatures expired). The set never holds more than the limit
  (plus a racing request or two), so checking it costs at most that many
  reads, whatever the number of jobs.
- Uploads per minute: a sliding window, a sorted set of the start times of
  the user's uploads in the last 60 seconds.

A refused upload answers 429 with `Retry-After`: when the oldest upload in
flight expires, or when the oldest start leaves the window.
"""

from __future__ import annotations

import math
import time

from redis import Redis

from vidqueue import defaults
from vidqueue.context import Context
from vidqueue.errors import RateLimited
from vidqueue.records import upload_deadline


def reserve_upload(ctx: Context, user_id: str, job_id: str) -> None:
    """Count a new upload of `user_id` against both limits, or raise `RateLimited`.

    Call it before the job's record exists; the reservation lasts until the
    job leaves `uploading` or its presigned requests expire.
    """
    now = time.time()
    _check_rate(ctx.redis, user_id, job_id, now, ctx.settings.max_uploads_per_minute)
    expires_at = now + ctx.settings.presign_expiry_seconds
    _check_in_flight(
        ctx.redis, user_id, job_id, now, expires_at, ctx.settings.max_uploads_in_flight
    )


def extend_upload(ctx: Context, user_id: str, job_id: str) -> None:
    """Keep a multipart upload in flight while new part URLs are being signed.

    The job's `upload_expires_at` moves on too, so the poller does not fail a
    large upload that is still sending parts ("upload never arrived").
    """
    lifetime_s = ctx.settings.presign_expiry_seconds
    key = defaults.IN_FLIGHT_KEY_TEMPLATE.format(user_id=user_id)
    with ctx.redis.pipeline(transaction=True) as pipe:
        pipe.zadd(key, {job_id: time.time() + lifetime_s}, xx=True, gt=True)
        pipe.expire(key, lifetime_s + 1, gt=True)
        pipe.execute()
    ctx.records.update(
        job_id, only_in=("uploading",), upload_expires_at=upload_deadline(lifetime_s)
    )


def release_upload(ctx: Context, user_id: str, job_id: str) -> None:
    """Stop counting an upload that ended before its job was made."""
    key = defaults.IN_FLIGHT_KEY_TEMPLATE.format(user_id=user_id)
    ctx.redis.zrem(key, job_id)


def _check_rate(
    redis: Redis, user_id: str, job_id: str, now: float, limit: int
) -> None:
    key = defaults.RATE_KEY_TEMPLATE.format(user_id=user_id)
    window = defaults.RATE_WINDOW_SECONDS
    member = f"{now:.6f}:{job_id}"
    with redis.pipeline(transaction=True) as pipe:
        pipe.zremrangebyscore(key, "-inf", now - window)
        pipe.zadd(key, {member: now})
        pipe.zcard(key)
        pipe.expire(key, window)
        started = pipe.execute()[2]
    if started <= limit:
        return

    redis.zrem(key, member)
    oldest = redis.zrange(key, 0, 0, withscores=True)
    wait = oldest[0][1] + window - now if oldest else window
    raise RateLimited(
        f"at most {limit} uploads may start per minute; try again later",
        math.ceil(wait),
    )


def _check_in_flight(
    redis: Redis,
    user_id: str,
    job_id: str,
    now: float,
    expires_at: float,
    limit: int,
) -> None:
    key = defaults.IN_FLIGHT_KEY_TEMPLATE.format(user_id=user_id)
    redis.zremrangebyscore(key, "-inf", now)
    _forget_finished(redis, key)

    with redis.pipeline(transaction=True) as pipe:
        pipe.zadd(key, {job_id: expires_at})
        pipe.zcard(key)
        pipe.expire(key, int(expires_at - now) + 1, gt=True)
        pipe.expire(key, int(expires_at - now) + 1, nx=True)
        in_flight = pipe.execute()[1]
    if in_flight <= limit:
        return

    redis.zrem(key, job_id)
    oldest = redis.zrange(key, 0, 0, withscores=True)
    wait = oldest[0][1] - now if oldest else 1
    raise RateLimited(
        f"{limit} uploads are already in flight; finish or abandon one first",
        math.ceil(wait),
    )


def _forget_finished(redis: Redis, key: str) -> None:
    """Drop the jobs of the set that have left `uploading`."""
    job_ids = [member.decode() for member in redis.zrange(key, 0, -1)]
    if not job_ids:
        return
    with redis.pipeline(transaction=False) as pipe:
        for job_id in job_ids:
            pipe.hget(defaults.job_key(job_id), "state")
        states = pipe.execute()
    # A job without a record yet is a form upload still streaming: it counts.
    done = [
        job_id
        for job_id, state in zip(job_ids, states, strict=True)
        if state is not None and state != b"uploading"
    ]
    if done:
        redis.zrem(key, *done)
