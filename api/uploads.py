"""Uploads straight to storage: a presigned PUT, then the client's complete call."""

from __future__ import annotations

import logging
from typing import Annotated

from litestar import Controller, post
from litestar.params import JSONBody, Parameter

from api.deps import ContextDep, UserDep
from api.jobs import check_upload_request, create_upload, find_job, status_of
from api.schemas import JobStatus, UploadRequest, UploadTicket
from handlers.trigger import Outcome, check_upload
from vidqueue.errors import UploadMissing

logger = logging.getLogger("vidqueue.api")

JobId = Annotated[str, Parameter(description="The job id returned by POST /uploads")]


class UploadController(Controller):
    """`POST /uploads` and `POST /uploads/{jobId}/complete`."""

    path = "/uploads"
    tags = ("uploads",)

    @post("/", status_code=201, sync_to_thread=True)
    def create(
        self, ctx: ContextDep, user: UserDep, data: JSONBody[UploadRequest]
    ) -> UploadTicket:
        """Create a job and return a presigned PUT for its bytes.

        The PUT signs the exact Content-Type and Content-Length, so storage
        refuses any other body, and it expires in minutes. The client sends the
        headers given here unchanged.
        """
        content_type = check_upload_request(
            ctx, data.filename, data.content_type, data.size
        )
        record = create_upload(
            ctx, user, data.filename, content_type, data.size, profile=data.profile
        )
        request = ctx.storage.presign_put(
            record.source_key, content_type, data.size,
            ctx.settings.presign_expiry_seconds,
        )  # fmt: skip
        status = status_of(ctx, record)
        logger.info("job %s: upload created (%d bytes)", record.id, data.size)
        return UploadTicket(
            job_id=record.id,
            method=request.method,
            url=request.url,
            headers=request.headers,
            key=record.source_key,
            expires_at=record.upload_expires_at,
            queue_position=status.queue_position or 0,
            estimated_time=status.estimated_time or 0,
        )

    @post("/{job_id:str}/complete", status_code=200, sync_to_thread=True)
    def complete(self, ctx: ContextDep, user: UserDep, job_id: JobId) -> JobStatus:
        """The client's word that its PUT finished; verified by a HEAD on storage."""
        find_job(ctx, user, job_id)
        outcome = check_upload(ctx, job_id)
        if outcome is Outcome.NOT_ARRIVED:
            raise UploadMissing(
                "storage has no object for this upload yet; finish the PUT first"
            )
        return status_of(ctx, find_job(ctx, user, job_id))
