"""Queue positions in constant time, however long the queue.

RQ keeps waiting jobs in a Redis list: enqueues push at the tail, workers pop
at the head. Finding a job's index with LPOS walks the list, so a status read
would cost O(n) on a long queue, and pollers read status often.

Instead, every enqueue takes the next number of a counter
(`ENQUEUED_TOTAL_KEY`) and keeps it in the job's Redis hash
(`QUEUE_SEQ_FIELD`, read along with the record). Jobs enqueued
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

# KEYS: job hash, enqueue total. Numbers only jobs whose record exists, so a
# late enqueue never makes a hash that is not a record.
_MARK_SCRIPT = """
local number = redis.call('INCR', KEYS[2])
if redis.call('EXISTS', KEYS[1]) == 1 then
  redis.call('HSET', KEYS[1], ARGV[1], number)
end
return number
"""


def mark_enqueued(redis: Redis, job_id: str) -> int:
    """Give a job just put on the queue its sequence number; returns it."""
    keys = [defaults.job_key(job_id), defaults.ENQUEUED_TOTAL_KEY]
    return int(redis.eval(_MARK_SCRIPT, 2, *keys, defaults.QUEUE_SEQ_FIELD))


def jobs_ahead(queue: Queue, job_id: str) -> int | None:
    """How many jobs wait before this one (0: next), or None if it is not queued."""
    redis = queue.connection
    with redis.pipeline(transaction=False) as pipe:
        pipe.hget(defaults.job_key(job_id), defaults.QUEUE_SEQ_FIELD)
        pipe.get(defaults.ENQUEUED_TOTAL_KEY)
        pipe.llen(queue.key)
        number, total, length = pipe.execute()
    ahead = ahead_from(number, total, length)
    if ahead is not None:
        return ahead
    position = redis.lpos(queue.key, job_id, maxlen=defaults.POSITION_SCAN_LIMIT)
    return None if position is None else int(position)


def ahead_from(
    number: bytes | int | None, total: bytes | int | None, length: int
) -> int | None:
    """Jobs ahead, from the job's number, the enqueue total and the queue length.

    None when the answer would fall outside the queue: the number is missing
    or stale, and only walking the list can tell.
    """
    if number is None or total is None:
        return None
    ahead = length - (int(total) - int(number)) - 1
    return ahead if 0 <= ahead < length else None
