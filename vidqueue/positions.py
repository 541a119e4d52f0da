"""Queue positions in constant time, however long the queue.

RQ keeps waiting jobs in a Redis list: enqueues push at the tail, workers pop
at the head. Finding a job's index with LPOS walks the list, so a status read
would cost O(n) on a long queue, and pollers read status often.

Instead, every enqueue takes the next number of a counter
(`ENQUEUED_TOTAL_KEY`) and keeps it beside the job's record. Jobs enqueued
after a job go in behind it, and jobs leave only from the head, so at any
moment, from three O(1) reads in one round trip (GET, GET, LLEN):

    behind = enqueued_total - my_number
    ahead  = queue_length - behind - 1

The answer is exact while the queue changes only by our enqueues and RQ's
pops. Two things bend it, by the number of such jobs present at once: a job
removed from the middle behind this one (a cancel) makes `ahead` one too small,
and a job that RQ's scheduler puts back after a retry interval, which takes no
number, one too large. A result outside the queue (a job whose number is
stale, as a retried job's is) falls back to LPOS limited to
`defaults.POSITION_SCAN_LIMIT` entries.
"""

from __future__ import annotations

from redis import Redis
from rq import Queue

from vidqueue import defaults


def mark_enqueued(redis: Redis, job_id: str) -> int:
    """Give a job just put on the queue its sequence number; returns it."""
    number = int(redis.incr(defaults.ENQUEUED_TOTAL_KEY))
    redis.set(
        defaults.QUEUE_SEQ_KEY_TEMPLATE.format(job_id=job_id),
        number,
        ex=defaults.RECORD_TTL_SECONDS,
    )
    return number


def jobs_ahead(queue: Queue, job_id: str) -> int | None:
    """How many jobs wait before this one (0: next), or None if it is not queued."""
    redis = queue.connection
    with redis.pipeline(transaction=False) as pipe:
        pipe.get(defaults.QUEUE_SEQ_KEY_TEMPLATE.format(job_id=job_id))
        pipe.get(defaults.ENQUEUED_TOTAL_KEY)
        pipe.llen(queue.key)
        number, total, length = pipe.execute()
    if number is not None and total is not None:
        ahead = length - (int(total) - int(number)) - 1
        if 0 <= ahead < length:
            return ahead
    position = redis.lpos(queue.key, job_id, maxlen=defaults.POSITION_SCAN_LIMIT)
    return None if position is None else int(position)
