"""Cancelling and retrying a caller's jobs."""

from __future__ import annotations

from litestar import Controller, delete, post

from api.deps import ContextDep, UserDep
from api.jobs import find_job, status_of
from api.schemas import JobStatus
from api.uploads import JobId
from vidqueue.control import cancel_job, retry_job


class ControlController(Controller):
    """`DELETE /jobs/{jobId}` and `POST /jobs/{jobId}/retry`."""

    path = "/jobs"
    tags = ("jobs",)

    @delete("/{job_id:str}", status_code=200, sync_to_thread=True)
    def cancel(self, ctx: ContextDep, user: UserDep, job_id: JobId) -> JobStatus:
        """Cancel the job: it leaves the queue, or its ffmpeg stops within a
        second; partial outputs are removed. 409 for a job that already ended."""
        cancel_job(ctx, find_job(ctx, user, job_id))
        return status_of(ctx, find_job(ctx, user, job_id))

    @post("/{job_id:str}/retry", status_code=200, sync_to_thread=True)
    def retry(self, ctx: ContextDep, user: UserDep, job_id: JobId) -> JobStatus:
        """Requeue a failed or cancelled job from the start."""
        retry_job(ctx, find_job(ctx, user, job_id))
        return status_of(ctx, find_job(ctx, user, job_id))
