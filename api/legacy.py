"""`POST /upload`: the original system's form upload, streamed to storage.

The file part of a `multipart/form-data` body goes to the upload bucket in
8 MiB parts as it arrives, so the API holds at most one part in memory and
nothing on disk, whatever the file's size. The job is created once the object
is complete, then handed to the trigger like any other upload.
"""

from __future__ import annotations

import logging

from anyio import to_thread
from litestar import Request, post
from multipart import MultipartSegment, ParserError, PushMultipartParser

from api.deps import ContextDep, UserDep
from api.jobs import check_upload_request, create_upload, status_of
from api.limits import release_upload, reserve_upload
from api.metrics import UPLOAD_BYTES
from api.schemas import LegacyUploadAnswer
from handlers.trigger import Outcome, check_upload
from vidqueue.errors import InvalidRequest, PayloadTooLarge, UnsupportedMediaType
from vidqueue.keys import upload_key
from vidqueue.records import new_job_id
from vidqueue.storage import MultipartWriter

logger = logging.getLogger("vidqueue.api")

MESSAGE = "Video uploaded successfully and queued for processing"


@post(
    "/upload",
    status_code=200,
    request_max_body_size=None,
    tags=["uploads"],
    summary="Upload a video in a form (compatible with the original system)",
)
async def legacy_upload(
    request: Request, ctx: ContextDep, user: UserDep
) -> LegacyUploadAnswer:
    """Accept one video as a `multipart/form-data` file field (any field name)."""
    boundary = _boundary(request.headers.get("content-type", ""))
    job_id = new_job_id()
    await to_thread.run_sync(reserve_upload, ctx, user, job_id)
    upload = _StreamedFile(ctx, user, job_id)
    try:
        await upload.receive(request, boundary)
        record = await to_thread.run_sync(upload.finish)
    except BaseException:
        await to_thread.run_sync(upload.abort)
        raise

    outcome = await to_thread.run_sync(check_upload, ctx, job_id)
    if outcome is not Outcome.ENQUEUED:
        logger.warning("job %s: form upload not enqueued: %s", job_id, outcome.value)
    status = await to_thread.run_sync(status_of, ctx, ctx.records.get(job_id) or record)
    return LegacyUploadAnswer(
        message=MESSAGE,
        job_id=job_id,
        queue_position=status.queue_position or 0,
        estimated_time=status.estimated_time or 0,
    )


class _StreamedFile:
    """The first file part of a form, streamed into the upload bucket."""

    def __init__(self, ctx: ContextDep, user: UserDep, job_id: str):
        self.ctx = ctx
        self.user = user
        self.job_id = job_id
        self.writer: MultipartWriter | None = None
        self.filename = ""
        self.content_type = ""
        self.finished = False

    async def receive(self, request: Request, boundary: str) -> None:
        in_file = False
        try:
            with PushMultipartParser(boundary, max_segment_count=16) as parser:
                async for chunk in request.stream():
                    for event in parser.parse(chunk):
                        in_file = await self._on_event(event, in_file)
                for event in parser.parse(b""):
                    in_file = await self._on_event(event, in_file)
        except ParserError as exc:
            raise InvalidRequest(f"malformed multipart/form-data: {exc}") from None
        if self.writer is None or not self.finished:
            raise InvalidRequest("the form has no file field with a video")

    async def _on_event(self, event, in_file: bool) -> bool:
        if isinstance(event, MultipartSegment):
            if event.filename is None or self.writer is not None:
                return False
            await to_thread.run_sync(self._start, event)
            return True
        if event is None:
            if in_file:
                self.finished = True
            return False
        if in_file and self.writer is not None:
            limit = self.ctx.settings.max_upload_bytes
            if self.writer.size + len(event) > limit:
                raise PayloadTooLarge(f"the file is over the limit of {limit} bytes")
            await to_thread.run_sync(self.writer.write, bytes(event))
        return in_file

    def _start(self, segment: MultipartSegment) -> None:
        self.filename = segment.filename or "video"
        self.content_type = check_upload_request(
            self.ctx,
            self.filename,
            segment.content_type or "application/octet-stream",
            None,
        )
        key = upload_key(self.user, self.job_id, self.filename)
        self.writer = self.ctx.storage.multipart_writer(key, self.content_type)

    def finish(self):
        if self.writer.size == 0:
            self.writer.abort()
            raise InvalidRequest("the uploaded file is empty")
        size = self.writer.close()
        record = create_upload(
            self.ctx, self.user, self.filename, self.content_type, size, self.job_id
        )
        UPLOAD_BYTES.observe(size)
        logger.info("job %s: form upload stored (%d bytes)", self.job_id, size)
        return record

    def abort(self) -> None:
        release_upload(self.ctx, self.user, self.job_id)
        if self.writer is not None:
            self.writer.abort()


def _boundary(content_type: str) -> str:
    kind, _, params = content_type.partition(";")
    if kind.strip().lower() != "multipart/form-data":
        raise UnsupportedMediaType("send the video as multipart/form-data")
    for param in params.split(";"):
        name, _, value = param.strip().partition("=")
        if name.lower() == "boundary" and value:
            return value.strip('"')
    raise InvalidRequest("multipart/form-data without a boundary")
