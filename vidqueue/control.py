"""Cancelling and retrying jobs, whatever state they are in."""

from __future__ import annotations

import logging

from rq.exceptions import NoSuchJobError
from rq.job import Job

from vidqueue.context import Context
from vidqueue.errors import Conflict
from vidqueue.keys import output_prefix
from vidqueue.queue import requeue_video
from vidqueue.records import JobRecord, utcnow

logger = logging.getLogger("vidqueue.control")


def cancel_job(ctx: Context, record: JobRecord) -> None:
    """Cancel a job that has not ended, and remove what it produced.

    A waiting job leaves the queue; a running job's worker sees the new state
    within half a second, stops ffmpeg and removes its partial outputs; an
    upload in progress stops being polled. Raises `Conflict` for a job that
    already ended.
    """
    cancelled = ctx.records.transition(
        record.id, "cancelled", ("uploading", "waiting", "active"),
        stage="", finished_at=utcnow(),
    )  # fmt: skip
    if not cancelled:
        state = ctx.records.state_of(record.id) or record.state
        raise Conflict(f"the job is already {state} and cannot be cancelled")

    _drop_queued(ctx, record.id)
    storage = ctx.storage
    removed = storage.delete_prefix(
        storage.output_bucket, output_prefix(record.user_id, record.id)
    )
    logger.info(
        "job %s: cancelled while %s, %d outputs removed",
        record.id,
        record.state,
        removed,
    )


def retry_job(ctx: Context, record: JobRecord) -> None:
    """Put a failed or cancelled job back on the queue, from the start.

    Raises `Conflict` when the job did not end that way, or when its upload
    never arrived (there is nothing to process).
    """
    if record.state not in ("failed", "cancelled"):
        raise Conflict(
            f"only failed or cancelled jobs can be retried, not {record.state} ones"
        )
    if ctx.storage.head(record.source_bucket, record.source_key) is None:
        raise Conflict("the job's upload is not in storage; upload the video again")

    moved = ctx.records.transition(
        record.id, "waiting", ("failed", "cancelled"),
        progress=0, stage="queued", failed_reason="", result=None,
        started_at="", finished_at="",
    )  # fmt: skip
    if not moved:
        raise Conflict("the job changed meanwhile; read its status and try again")
    requeue_video(ctx.queue, record.id, ctx.settings)
    logger.info("job %s: retried by request", record.id)


def _drop_queued(ctx: Context, job_id: str) -> None:
    # A waiting job would be skipped by the worker anyway (it checks the state
    # first); deleting it keeps queue positions and counts honest, and lets a
    # retry enqueue it anew (a job only taken off the list still reads queued).
    try:
        job = Job.fetch(job_id, connection=ctx.redis)
    except NoSuchJobError:
        return
    job.delete()
