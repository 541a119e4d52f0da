"""One function that every announcement of an upload ends in.

Whoever learns that an object exists (the client's complete call, the poller,
a storage event pushed by MinIO, AWS or Storj, an inbox listing) ends in
`accept_upload`. It checks the object against what the client declared, moves
the job `uploading -> waiting` at most once, and the one caller that made the
move enqueues the RQ job. Duplicate, replayed and late announcements change
nothing.

`handle(event)` is the serverless-style entry for S3 event notifications
(`{"Records": [...]}`), used by the storage webhook and MinIO's listen API.
"""

from __future__ import annotations

import enum
import logging
from urllib.parse import unquote_plus

from vidqueue.context import Context
from vidqueue.keys import INBOX_PREFIX, job_id_from_upload_key
from vidqueue.queue import enqueue_video
from vidqueue.records import JobRecord, utcnow
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
    EXPIRED = "expired"
    """The upload never arrived and its time is up; the job failed."""
    IGNORED = "ignored"
    """The event is not about a new upload (other bucket, prefix or event)."""


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


def handle(event: dict, ctx: Context) -> list[Outcome]:
    """Act on an S3 event notification: one outcome per record.

    Accepts the JSON that MinIO, AWS and Storj (through Pub/Sub) send:
    `{"Records": [{"eventName": "s3:ObjectCreated:Put", "s3": {"bucket":
    {"name": ...}, "object": {"key": ..., "size": ..., "eTag": ...}}}]}`.
    Keys arrive URL-encoded (spaces as `+`), as S3 encodes them. Records for
    other buckets, other events and keys outside `u/` and `inbox/` are ignored
    with a log line.
    """
    records = event.get("Records") if isinstance(event, dict) else None
    if not isinstance(records, list):
        return []
    return [_handle_record(ctx, record) for record in records]


def _handle_record(ctx: Context, record: dict) -> Outcome:
    try:
        name = str(record.get("eventName", ""))
        bucket = record["s3"]["bucket"]["name"]
        found = record["s3"]["object"]
        key = unquote_plus(found["key"])
        info = ObjectInfo(
            size=int(found.get("size", -1)),
            etag=str(found.get("eTag") or found.get("etag") or "").strip('"'),
            content_type=found.get("contentType"),
        )
    except (KeyError, TypeError, ValueError, AttributeError):
        logger.warning("storage event record ignored: not an S3 event record")
        return Outcome.IGNORED
    if "ObjectCreated" not in name:
        return Outcome.IGNORED
    return object_created(ctx, bucket, key, info)


def object_created(ctx: Context, bucket: str, key: str, info: ObjectInfo) -> Outcome:
    """An object appeared in storage: accept it if it is an upload of ours."""
    if bucket != ctx.storage.upload_bucket:
        logger.info("object in bucket %s ignored: not the upload bucket", bucket)
        return Outcome.IGNORED
    if key.startswith(INBOX_PREFIX):
        from handlers.inbox import inbox_object

        return inbox_object(ctx, key, info)

    job_id = job_id_from_upload_key(key)
    if job_id is None:
        logger.info("object %r ignored: not under u/ or %s", key[:200], INBOX_PREFIX)
        return Outcome.IGNORED
    record = ctx.records.get(job_id)
    if record is None:
        return Outcome.UNKNOWN
    if record.source_key != key:
        logger.warning(
            "job %s: object %r is not its upload; ignored", job_id, key[:200]
        )
        return Outcome.IGNORED
    if record.state != "uploading":
        return Outcome.DUPLICATE
    return accept_upload(ctx, record, info)


def expire_upload(ctx: Context, record: JobRecord) -> Outcome:
    """Fail an upload whose presigned request expired without an object."""
    if not ctx.records.transition(
        record.id, "failed", ("uploading",),
        failed_reason="upload never arrived", stage="", finished_at=utcnow(),
    ):  # fmt: skip
        return Outcome.DUPLICATE
    logger.info("job %s: upload never arrived; failed", record.id)
    return Outcome.EXPIRED
