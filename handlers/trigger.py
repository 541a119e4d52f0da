"""One function that every announcement of an upload ends in.

Whoever learns that an object exists (the client's complete call, the poller,
a storage event) calls `accept_upload`. It checks the object against what the
client declared, moves the job `uploading -> waiting` at most once, and the one
caller that made the move enqueues the RQ job. Duplicate and late announcements
change nothing.
"""

from __future__ import annotations

import enum
import logging

from vidqueue.context import Context
from vidqueue.queue import enqueue_video
from vidqueue.records import JobRecord
from vidqueue.storage import ObjectInfo

logger = logging.getLogger("vidqueue.trigger")


class Outcome(enum.Enum):
    """What an announcement did."""

    ENQUEUED = "enqueued"
    """This call moved the job to `waiting` and put it on the queue."""
    DUPLICATE = "duplicate"
    """The job had already left `uploading`; nothing changed."""
    NOT_ARRIVED = "not_arrived"
    """Storage has no object for the job yet."""
    REJECTED = "rejected"
    """The object does not match the upload and the job failed."""
    UNKNOWN = "unknown"
    """No job has this id."""


def check_upload(ctx: Context, job_id: str) -> Outcome:
    """HEAD the job's object and accept it if it is there."""
    record = ctx.records.get(job_id)
    if record is None:
        return Outcome.UNKNOWN
    if record.state != "uploading":
        return Outcome.DUPLICATE
    info = ctx.storage.head(record.source_bucket, record.source_key)
    if info is None:
        return Outcome.NOT_ARRIVED
    return accept_upload(ctx, record, info)


def accept_upload(ctx: Context, record: JobRecord, info: ObjectInfo) -> Outcome:
    """Turn the job's arrived object into a waiting job, once.

    An object whose size differs from the declared size fails the job, since
    the presigned PUT signed that size and anything else is not the upload the
    API agreed to.
    """
    if info.size != record.size_bytes:
        reason = (
            f"uploaded object is {info.size} bytes, "
            f"but {record.size_bytes} bytes were declared"
        )
        if ctx.records.transition(
            record.id, "failed", ("uploading",), failed_reason=reason, stage=""
        ):
            logger.warning("job %s: rejected upload: %s", record.id, reason)
            return Outcome.REJECTED
        return Outcome.DUPLICATE

    moved = ctx.records.transition(record.id, "waiting", ("uploading",), stage="queued")
    if not moved:
        logger.debug("job %s: already announced", record.id)
        return Outcome.DUPLICATE

    enqueue_video(ctx.queue, record.id, ctx.settings)
    logger.info("job %s: upload arrived (%d bytes), waiting", record.id, info.size)
    return Outcome.ENQUEUED
