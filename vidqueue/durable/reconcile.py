"""Rebuild in Redis the unfinished jobs that Redis lost, from the database.

Redis is fast but may lose data (a restart without persistence, a flush).
The database keeps every job, so the jobs it has as `uploading`, `waiting` or
`active` and Redis no longer knows get their records back:

- `uploading`: the record as it was, so the poller keeps checking its object;
- `waiting` and `active`: the record in `waiting` (whatever ran it has lost
  its queue entry along with the record), and the job back on the queue.

Each rebuilt record carries the next version, so the database learns of the
rebuild through the outbox like of any other change. Jobs that Redis still
has are left alone, and a lock keeps two reconciles (two pollers starting
together) from rebuilding the same job twice.
"""

from __future__ import annotations

import dataclasses
import logging
from typing import TYPE_CHECKING

from vidqueue import defaults
from vidqueue.errors import ConfigError
from vidqueue.queue import requeue_video
from vidqueue.records import JobRecord, utcnow

if TYPE_CHECKING:
    from vidqueue.context import Context

logger = logging.getLogger("vidqueue.reconcile")

LOCK_TIMEOUT_SECONDS = 300


def reconcile(ctx: Context) -> list[str]:
    """Rebuild the records of unfinished jobs missing from Redis; returns their ids.

    Returns an empty list when another reconcile is running. Raises
    `DatabaseUnavailable` when the database cannot be read.
    """
    if ctx.durable is None:
        raise ConfigError("reconcile needs a database: set VIDQUEUE_DATABASE_URL")
    lock = ctx.redis.lock(defaults.RECONCILE_LOCK_KEY, timeout=LOCK_TIMEOUT_SECONDS)
    if not lock.acquire(blocking=False):
        logger.info("another reconcile is running; this one does nothing")
        return []
    try:
        missing = _missing(ctx)
        for record in missing:
            _restore(ctx, record)
        return [record.id for record in missing]
    finally:
        lock.release()


def _missing(ctx: Context) -> list[JobRecord]:
    rows = ctx.durable.unfinished()
    with ctx.redis.pipeline(transaction=False) as pipe:
        for row in rows:
            pipe.exists(defaults.job_key(row.id))
        present = pipe.execute()
    return [row for row, exists in zip(rows, present, strict=True) if not exists]


def _restore(ctx: Context, row: JobRecord) -> None:
    record = dataclasses.replace(row, version=row.version + 1, updated_at=utcnow())
    if row.state == "active":
        record = dataclasses.replace(
            record, state="waiting", stage="queued", progress=0
        )
    ctx.records.create(record)

    if record.state == "waiting":
        requeue_video(ctx.queue, record.id, ctx.settings)
    logger.info(
        "job %s: record rebuilt from the database (%s%s)",
        record.id,
        row.state,
        ", queued again" if record.state == "waiting" else "",
    )
