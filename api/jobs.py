"""What the routes share: checking uploads, finding a caller's job, shaping status."""

from __future__ import annotations

import math
import time
from dataclasses import dataclass
from weakref import WeakKeyDictionary

from rq import Worker

from api.limits import release_upload, reserve_upload
from api.metrics import UPLOAD_BYTES
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
from vidqueue.positions import jobs_ahead
from vidqueue.public import public_result
from vidqueue.records import JobRecord, looks_like_job_id, new_job_id, upload_deadline
from vidqueue.webhooks.addresses import accept_callback_url


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
    callback_url: str | None = None,
) -> JobRecord:
    """Create the record of a new upload in state `uploading`.

    Raises `InvalidRequest` for a profile the deployment does not offer, and
    for a callback URL it may not call (or any, with webhooks off).
    """
    profile = ctx.profiles.get(profile).name
    callback_url = accept_callback_url(ctx.settings, callback_url)
    job_id = job_id or new_job_id()
    record = JobRecord(
        id=job_id,
        user_id=user_id,
        source_bucket=ctx.storage.upload_bucket,
        source_key=upload_key(user_id, job_id, filename),
        filename=filename[: defaults.MAX_FILENAME_CHARS],
        content_type=content_type,
        size_bytes=size,
        profile=profile,
        upload_expires_at=upload_deadline(ctx.settings.presign_expiry_seconds),
        callback_url=callback_url,
    )
    ctx.records.create(record)
    return record


def open_upload(
    ctx: Context,
    user_id: str,
    filename: str,
    content_type: str,
    size: int,
    profile: str | None = None,
    callback_url: str | None = None,
) -> JobRecord:
    """Create a new upload within the user's limits (else `RateLimited`)."""
    job_id = new_job_id()
    reserve_upload(ctx, user_id, job_id)
    try:
        record = create_upload(
            ctx,
            user_id,
            filename,
            content_type,
            size,
            job_id,
            profile=profile,
            callback_url=callback_url,
        )
    except BaseException:
        release_upload(ctx, user_id, job_id)
        raise
    if size:
        UPLOAD_BYTES.observe(size)
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
    """Jobs ahead of this one: in the queue while waiting, all waiting before that.

    Constant time on any queue length (see `vidqueue.positions`).
    """
    if record.state == "waiting":
        return jobs_ahead(ctx.queue, record.id) or 0
    if record.state == "uploading":
        return ctx.records.counts()["waiting"]
    return None


@dataclass(frozen=True)
class Speed:
    """How fast the workers go, as measured over every job processed so far."""

    workers: int
    video_seconds_per_job: float
    realtime_factor: float
    """Seconds of video one worker processes per second."""

    def estimate(self, jobs_ahead: int) -> int:
        """Seconds until a job with `jobs_ahead` before it is done.

        The work ahead, in seconds of video (the jobs ahead and this one, each
        as long as the average video so far), divided by what the workers
        process per second: the realtime factor times the number of workers.
        """
        work_s = (jobs_ahead + 1) * self.video_seconds_per_job
        return math.ceil(work_s / (self.realtime_factor * self.workers))


_speeds: WeakKeyDictionary[Context, tuple[float, Speed]] = WeakKeyDictionary()


def measured_speed(ctx: Context) -> Speed:
    """The workers' speed, re-read from Redis at most every few seconds.

    Before any job was measured, a job is taken to need
    `ESTIMATE_DEFAULT_SECONDS` of one worker's time.
    """
    cached = fresh_speed(ctx)
    if cached is not None:
        return cached

    totals = ctx.records.throughput()
    video_s, elapsed_s = totals["video_seconds"], totals["elapsed_seconds"]
    speed = Speed(
        workers=max(Worker.count(queue=ctx.queue), 1),
        video_seconds_per_job=defaults.ESTIMATE_DEFAULT_SECONDS,
        realtime_factor=1.0,
    )
    if totals["jobs"] >= 1 and video_s > 0 and elapsed_s > 0:
        speed = Speed(speed.workers, video_s / totals["jobs"], video_s / elapsed_s)
    _speeds[ctx] = (time.monotonic(), speed)
    return speed


def fresh_speed(ctx: Context) -> Speed | None:
    """The speed read from Redis in the last few seconds, if any (no I/O)."""
    cached = _speeds.get(ctx)
    if cached and time.monotonic() - cached[0] < defaults.FIGURES_CACHE_SECONDS:
        return cached[1]
    return None


def status_of(ctx: Context, record: JobRecord) -> JobStatus:
    """The public view of a job."""
    position = position_of(ctx, record)
    estimate = None if position is None else measured_speed(ctx).estimate(position)
    return shape_status(record, position, estimate)


def shape_status(
    record: JobRecord, position: int | None, estimate: int | None
) -> JobStatus:
    """The public view of a job, given its queue position and estimate."""
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


def recent_jobs(ctx: Context, user_id: str, limit: int) -> list[JobStatus]:
    """The user's `limit` most recent jobs, newest first."""
    statuses = []
    for job_id in ctx.records.user_jobs(user_id, limit):
        try:
            statuses.append(status_of(ctx, find_job(ctx, user_id, job_id)))
        except JobNotFound:
            continue
    return statuses
