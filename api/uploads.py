"""Uploads straight to storage: a presigned PUT or POST, then the complete call."""

from __future__ import annotations

import logging
from typing import Annotated

from litestar import Controller, post
from litestar.params import JSONBody, Parameter

from api.deps import ContextDep, UserDep
from api.jobs import check_upload_request, find_job, open_upload, status_of
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
        """Create a job and return a presigned request for its bytes.

        The PUT (the default) signs the exact Content-Type and Content-Length,
        so storage refuses any other body, and it expires in minutes; the
        client sends the headers given here unchanged. With `"method": "POST"`
        the answer is a form POST instead: send `fields`, then the file, to
        `url`; its signed policy allows exactly `size` bytes of that type
        (for endpoints that take POST policies; Storj's gateway does not).
        Each user has at most `VIDQUEUE_MAX_UPLOADS_IN_FLIGHT` uploads under
        way and starts at most `VIDQUEUE_MAX_UPLOADS_PER_MINUTE`: 429 past that.
        """
        content_type = check_upload_request(
            ctx, data.filename, data.content_type, data.size
        )
        record = open_upload(
            ctx,
            user,
            data.filename,
            content_type,
            data.size,
            profile=data.profile,
            callback_url=data.callback_url,
        )
        expiry_s = ctx.settings.presign_expiry_seconds
        fields = None
        if data.method == "POST":
            url, fields = ctx.storage.presign_post(
                record.source_key, content_type, data.size, expiry_s
            )
            headers: dict[str, str] = {}
        else:
            request = ctx.storage.presign_put(
                record.source_key, content_type, data.size, expiry_s
            )
            url, headers = request.url, request.headers
        status = status_of(ctx, record)
        logger.info(
            "job %s: upload created (%d bytes, %s)", record.id, data.size, data.method
        )
        return UploadTicket(
            job_id=record.id,
            method=data.method,
            url=url,
            headers=headers,
            key=record.source_key,
            expires_at=record.upload_expires_at,
            queue_position=status.queue_position or 0,
            estimated_time=status.estimated_time or 0,
            fields=fields,
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
