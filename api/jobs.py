"""What the routes share: checking uploads, finding a caller's job, shaping status."""

from __future__ import annotations

import math
from datetime import UTC, datetime, timedelta

from rq import Worker

from api.schemas import JobStatus
from vidqueue import defaults
from vidqueue.context import Context
from vidqueue.errors import (
    InvalidRequest,
    JobNotFound,
    PayloadTooLarge,
    UnsupportedMediaType,
)
from vidqueue.keys import upload_key
from vidqueue.queue import queue_position
from vidqueue.records import JobRecord, looks_like_job_id, new_job_id


def check_upload_request(
    ctx: Context, filename: str, content_type: str, size: int | None
) -> str:
    """Refuse an upload the system would not accept; returns the content type.

    `size` is None when the client does not say it in advance (form uploads).
    """
    content_type = content_type.split(";")[0].strip().lower()
    if not filename.strip():
        raise InvalidRequest("filename must not be empty")
    if content_type not in defaults.ALLOWED_CONTENT_TYPES:
        allowed = ", ".join(defaults.ALLOWED_CONTENT_TYPES)
        raise UnsupportedMediaType(
            f"content type {content_type!r} is not accepted; use one of: {allowed}"
        )
    if size is None:
        return content_type
    if size <= 0:
        raise InvalidRequest("size must be a positive number of bytes")
    if size > ctx.settings.max_upload_bytes:
        raise PayloadTooLarge(
            f"the file is {size} bytes; the limit is {ctx.settings.max_upload_bytes}"
        )
    return content_type


def create_upload(
    ctx: Context,
    user_id: str,
    filename: str,
    content_type: str,
    size: int,
    job_id: str | None = None,
    profile: str | None = None,
) -> JobRecord:
    """Create the record of a new upload in state `uploading`.

    Raises `InvalidRequest` for a profile the deployment does not offer.
    """
    profile = ctx.profiles.get(profile).name
    job_id = job_id or new_job_id()
    expires = datetime.now(UTC) + timedelta(seconds=ctx.settings.presign_expiry_seconds)
    record = JobRecord(
        id=job_id,
        user_id=user_id,
        source_bucket=ctx.storage.upload_bucket,
        source_key=upload_key(user_id, job_id, filename),
        filename=filename[: defaults.MAX_FILENAME_CHARS],
        content_type=content_type,
        size_bytes=size,
        profile=profile,
        upload_expires_at=_iso(expires),
    )
    ctx.records.create(record)
    return record


def find_job(ctx: Context, user_id: str, job_id: str) -> JobRecord:
    """The caller's job, or `JobNotFound` (also for other users' jobs)."""
    record = ctx.records.get(job_id) if looks_like_job_id(job_id) else None
    if record is None and ctx.durable is not None and looks_like_job_id(job_id):
        record = ctx.durable.fetch(job_id)  # Redis forgot it; the database did not
    if record is None or record.user_id != user_id:
        raise JobNotFound(f"no job {job_id!r}")
    return record


def position_of(ctx: Context, record: JobRecord) -> int | None:
    """Jobs ahead of this one: in the queue while waiting, all waiting before that."""
    if record.state == "waiting":
        position = queue_position(ctx.queue, record.id)
        if position is not None:
            return position
        return 0
    if record.state == "uploading":
        return ctx.records.counts()["waiting"]
    return None


def estimated_seconds(ctx: Context, jobs_ahead: int) -> int:
    """Seconds until a job with `jobs_ahead` before it is done, from measured speed."""
    figures = ctx.records.throughput()
    per_job = defaults.ESTIMATE_DEFAULT_SECONDS
    if figures["jobs"] >= 1:
        per_job = figures["elapsed_seconds"] / figures["jobs"]
    workers = max(Worker.count(queue=ctx.queue), 1)
    return math.ceil((jobs_ahead + 1) * per_job / workers)


def status_of(ctx: Context, record: JobRecord) -> JobStatus:
    """The public view of a job."""
    position = position_of(ctx, record)
    estimate = None if position is None else estimated_seconds(ctx, position)
    return JobStatus(
        job_id=record.id,
        state=record.state,
        progress=record.progress,
        result=public_result(record.result),
        failed_reason=record.failed_reason or None,
        queue_position=position,
        stage=record.stage or None,
        created_at=record.created_at,
        updated_at=record.updated_at,
        estimated_time=estimate,
        filename=record.filename,
    )


def public_result(result: dict | None) -> dict | None:
    """The job's result with camelCase names and no internal fields."""
    if not result:
        return None
    hidden = {"video_key"}
    return {_camel(k): v for k, v in result.items() if k not in hidden}


def _camel(name: str) -> str:
    head, *rest = name.split("_")
    return head + "".join(part.title() for part in rest)


def _iso(moment: datetime) -> str:
    return moment.isoformat(timespec="seconds").replace("+00:00", "Z")
