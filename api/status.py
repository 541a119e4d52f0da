"""Job status: one job, the caller's recent jobs, and queue figures."""

from __future__ import annotations

from typing import Annotated

from litestar import Controller, Request, get
from litestar.params import QueryParameter
from rq import Worker

from api.auth import current_user
from api.deps import ContextDep, UserDep
from api.jobs import recent_jobs
from api.reader import reader_of
from api.schemas import JobList, JobStatus, QueueInfo
from api.uploads import JobId


class StatusController(Controller):
    """`GET /status/{jobId}`, `GET /jobs` and `GET /queue-info`."""

    tags = ("status",)

    @get("/status/{job_id:str}")
    async def status(self, request: Request, job_id: JobId) -> JobStatus:
        """The job's state, progress, result or failure reason, and queue position.

        Pollers call this often: concurrent calls share Redis round trips.
        """
        # The hottest route skips dependency injection, whose per-request work
        # costs more than the status read: the same calls, made directly.
        reader = reader_of(request.app)
        user = current_user(request, reader.ctx)
        return await reader.status(user, job_id)

    @get("/jobs", sync_to_thread=True)
    def jobs(
        self,
        ctx: ContextDep,
        user: UserDep,
        limit: Annotated[
            int, QueryParameter(ge=1, le=100, description="How many jobs, at most")
        ] = 20,
    ) -> JobList:
        """The caller's most recent jobs, newest first, with their status."""
        return JobList(jobs=recent_jobs(ctx, user, limit))

    @get("/queue-info", sync_to_thread=True)
    def queue_info(self, ctx: ContextDep) -> QueueInfo:
        """How many jobs are in each state, how many workers, and their speed.

        `completed`, `failed` and `cancelled` count every job that ended so far;
        `total` adds all states together.
        """
        counts = ctx.records.counts()
        figures = ctx.records.throughput()
        speed = 0.0
        if figures["elapsed_seconds"] > 0:
            speed = figures["video_seconds"] / figures["elapsed_seconds"]
        return QueueInfo(
            waiting=counts["waiting"],
            active=counts["active"],
            completed=counts["completed"],
            failed=counts["failed"],
            total=sum(counts.values()),
            uploading=counts["uploading"],
            cancelled=counts["cancelled"],
            workers=Worker.count(queue=ctx.queue),
            throughput={
                "jobs": figures["jobs"],
                "videoSeconds": round(figures["video_seconds"], 3),
                "processingSeconds": round(figures["elapsed_seconds"], 3),
                "realtimeFactor": round(speed, 3),
            },
        )
