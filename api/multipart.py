"""Large uploads in parts, on the endpoints Uppy's AwsS3 plugin calls.

Point Uppy's `@uppy/aws-s3` at the API (`endpoint: API_URL`, with
`shouldUseMultipart`) and it works unchanged, as against a Companion server:

- `POST /s3/multipart` (`createMultipartUpload`):
  `{filename, type, metadata}` → `{key, uploadId}`
- `GET /s3/multipart/{uploadId}/{partNumber}?key=` (`signPart`): `{url, expires}`
- `GET /s3/multipart/{uploadId}/batch?key=&partNumbers=1,2` (older Uppy's
  `prepareUploadParts`): `{presignedUrls: {"1": url, ...}}`
- `GET /s3/multipart/{uploadId}?key=` (`listParts`): `[{PartNumber, ETag, Size}]`
- `POST /s3/multipart/{uploadId}/complete?key=` (`completeMultipartUpload`):
  `{parts: [{PartNumber, ETag}]}` → `{location}`
- `DELETE /s3/multipart/{uploadId}?key=` (`abortMultipartUpload`): `{}`
- `GET /s3/params?filename=&type=&metadata[size]=` (`getUploadParameters`, for
  files Uppy sends whole): a form POST

Every multipart upload belongs to a job, created at the start in state
`uploading` under a key the server chose; the key names the job, so each call
finds the caller's job from it (other users' jobs answer 404) and checks that
the UploadId is the job's own. Part URLs are short-lived presigned PUTs. The
size limit holds at complete: storage's own list of parts is summed before the
object is made, and an upload over the limit is aborted and its job failed.
Complete then hands the object to the trigger, like `POST /uploads/{id}/complete`.
"""

from __future__ import annotations

import logging
from typing import Annotated, Any

from litestar import Controller, Request, delete, get, post
from litestar.params import JSONBody, Parameter, QueryParameter

from api.deps import ContextDep, UserDep
from api.jobs import check_upload_request, find_job, open_upload, status_of
from api.limits import extend_upload
from api.metrics import UPLOAD_BYTES
from api.schemas import (
    MultipartDone,
    MultipartJoined,
    MultipartStart,
    MultipartStarted,
    PartUrl,
    PartUrls,
    PostUpload,
    StoredPart,
)
from handlers.trigger import Outcome, check_upload
from vidqueue import defaults
from vidqueue.context import Context
from vidqueue.errors import (
    Conflict,
    InvalidRequest,
    JobNotFound,
    PayloadTooLarge,
    StorageError,
)
from vidqueue.keys import job_id_from_upload_key
from vidqueue.multipart import MultipartUploads, Part
from vidqueue.records import JobRecord, utcnow

logger = logging.getLogger("vidqueue.api")

ObjectKey = Annotated[
    str, QueryParameter(name="key", description="The key that POST /s3/multipart gave")
]
UploadId = Annotated[str, Parameter(description="The uploadId of POST /s3/multipart")]
PartNumber = Annotated[
    int, Parameter(ge=1, le=defaults.MAX_PARTS, description="The part, from 1")
]


class MultipartController(Controller):
    """Uppy-compatible multipart uploads (and form POSTs) straight to storage."""

    path = "/s3"
    tags = ("multipart uploads",)

    @post("/multipart", status_code=200, sync_to_thread=True)
    def create(
        self, ctx: ContextDep, user: UserDep, data: JSONBody[MultipartStart]
    ) -> MultipartStarted:
        """Create a job and the multipart upload that will carry its bytes.

        The size is optional: give it (`size`, or `metadata.size` from Uppy's
        file meta) to have oversized files refused now; otherwise it is
        measured, and checked, at complete.
        """
        size = _declared_size(data.size, data.metadata)
        content_type = check_upload_request(ctx, data.filename, data.type, size)
        record = open_upload(ctx, user, data.filename, content_type, size or 0)
        try:
            upload_id = MultipartUploads(ctx.storage).create(
                record.source_key, content_type
            )
        except StorageError as exc:
            ctx.records.transition(
                record.id, "failed", ("uploading",),
                stage="", failed_reason=str(exc), finished_at=utcnow(),
            )  # fmt: skip
            raise
        ctx.redis.set(
            defaults.MULTIPART_KEY_TEMPLATE.format(job_id=record.id),
            upload_id,
            ex=defaults.RECORD_TTL_SECONDS,
        )
        logger.info("job %s: multipart upload created", record.id)
        return MultipartStarted(
            key=record.source_key, upload_id=upload_id, job_id=record.id
        )

    @get("/multipart/{upload_id:str}/batch", sync_to_thread=True)
    def sign_parts(
        self,
        ctx: ContextDep,
        user: UserDep,
        upload_id: UploadId,
        key: ObjectKey,
        part_numbers: Annotated[
            str, QueryParameter(name="partNumbers", description="e.g. 1,2,3")
        ],
    ) -> PartUrls:
        """Presigned PUTs for several parts at once."""
        record = _uploading_job(ctx, user, upload_id, key)
        numbers = _part_numbers(part_numbers, record)
        uploads = MultipartUploads(ctx.storage)
        expiry_s = ctx.settings.presign_expiry_seconds
        extend_upload(ctx, user, record.id)
        return PartUrls(
            presigned_urls={
                str(n): uploads.presign_part(key, upload_id, n, expiry_s)
                for n in numbers
            }
        )

    @get("/multipart/{upload_id:str}/{part_number:int}", sync_to_thread=True)
    def sign_part(
        self,
        ctx: ContextDep,
        user: UserDep,
        upload_id: UploadId,
        part_number: PartNumber,
        key: ObjectKey,
    ) -> PartUrl:
        """A presigned PUT for one part, valid for minutes."""
        record = _uploading_job(ctx, user, upload_id, key)
        _check_part_number(part_number, record)
        expiry_s = ctx.settings.presign_expiry_seconds
        url = MultipartUploads(ctx.storage).presign_part(
            key, upload_id, part_number, expiry_s
        )
        extend_upload(ctx, user, record.id)
        return PartUrl(url=url, expires=expiry_s)

    @get("/multipart/{upload_id:str}", sync_to_thread=True)
    def list_parts(
        self, ctx: ContextDep, user: UserDep, upload_id: UploadId, key: ObjectKey
    ) -> list[StoredPart]:
        """The parts that storage holds so far (to resume an upload)."""
        _uploading_job(ctx, user, upload_id, key)
        return [
            StoredPart(part_number=p.number, size=p.size, e_tag=p.etag)
            for p in MultipartUploads(ctx.storage).parts(key, upload_id)
        ]

    @post(
        "/multipart/{upload_id:str}/complete",
        status_code=200,
        sync_to_thread=True,
        request_max_body_size=defaults.MULTIPART_COMPLETE_BODY_LIMIT_BYTES,
    )
    def complete(
        self,
        ctx: ContextDep,
        user: UserDep,
        upload_id: UploadId,
        key: ObjectKey,
        data: JSONBody[MultipartDone],
    ) -> MultipartJoined:
        """Join the parts into the object, then hand it to the trigger.

        413 (and the job fails) when the parts add up to more than the limit;
        a declared size that the parts do not match fails the job as well.
        """
        record = _uploading_job(ctx, user, upload_id, key)
        uploads = MultipartUploads(ctx.storage)
        parts = _chosen_parts(data, uploads.parts(key, upload_id))
        size = sum(part.size for part in parts)
        _check_joined_size(ctx, record, upload_id, size)

        location = uploads.complete(key, upload_id, parts)
        ctx.redis.delete(defaults.MULTIPART_KEY_TEMPLATE.format(job_id=record.id))
        outcome = check_upload(ctx, record.id)
        if outcome is not Outcome.ENQUEUED:
            logger.warning("job %s: multipart upload %s", record.id, outcome.value)
        logger.info("job %s: multipart upload complete (%d bytes)", record.id, size)
        return MultipartJoined(
            location=location,
            job_id=record.id,
            status=status_of(ctx, find_job(ctx, user, record.id)),
        )

    @delete("/multipart/{upload_id:str}", status_code=200, sync_to_thread=True)
    def abort(
        self, ctx: ContextDep, user: UserDep, upload_id: UploadId, key: ObjectKey
    ) -> dict[str, Any]:
        """Drop the upload and its parts; the job ends `cancelled`."""
        record = _uploading_job(ctx, user, upload_id, key)
        MultipartUploads(ctx.storage).abort(key, upload_id)
        ctx.redis.delete(defaults.MULTIPART_KEY_TEMPLATE.format(job_id=record.id))
        ctx.records.transition(
            record.id, "cancelled", ("uploading",),
            stage="", failed_reason="upload aborted", finished_at=utcnow(),
        )  # fmt: skip
        logger.info("job %s: multipart upload aborted", record.id)
        return {}

    @get("/params", sync_to_thread=True)
    def post_params(
        self,
        request: Request,
        ctx: ContextDep,
        user: UserDep,
        filename: Annotated[str, QueryParameter(description="The file's name")],
        content_type: Annotated[str, QueryParameter(name="type")],
        size: Annotated[int | None, QueryParameter(description="Bytes")] = None,
    ) -> PostUpload:
        """A form POST for a whole (small) file, as Uppy's `getUploadParameters`.

        Needs the size, as `size` or `metadata[size]` (Uppy sends the file's
        meta as `metadata[...]`): the signed policy allows exactly that many
        bytes. The poller, or a storage event, notices the object.
        """
        size = _declared_size(
            size, {"size": request.query_params.get("metadata[size]")}
        )
        if size is None:
            raise InvalidRequest("give the file's size, as size or metadata[size]")
        content_type = check_upload_request(ctx, filename, content_type, size)
        record = open_upload(ctx, user, filename, content_type, size)
        expiry_s = ctx.settings.presign_expiry_seconds
        url, fields = ctx.storage.presign_post(
            record.source_key, content_type, size, expiry_s
        )
        logger.info("job %s: form POST upload created (%d bytes)", record.id, size)
        return PostUpload(
            method="POST", url=url, fields=fields, expires=expiry_s, job_id=record.id
        )


def _declared_size(size: int | None, metadata: dict[str, Any]) -> int | None:
    if size is not None:
        return size
    value = metadata.get("size")
    if value is None or value == "":
        return None
    if isinstance(value, bool) or not isinstance(value, int | str):
        raise InvalidRequest("metadata.size must be a whole number of bytes")
    try:
        return int(value)
    except ValueError:
        raise InvalidRequest("metadata.size must be a whole number of bytes") from None


def _uploading_job(ctx: Context, user: str, upload_id: str, key: str) -> JobRecord:
    """The caller's job behind `key`, still uploading through `upload_id`."""
    job_id = job_id_from_upload_key(key)
    if job_id is None:
        raise JobNotFound(f"no multipart upload for key {key!r}")
    record = find_job(ctx, user, job_id)
    stored = ctx.redis.get(defaults.MULTIPART_KEY_TEMPLATE.format(job_id=record.id))
    if record.source_key != key or stored is None or stored.decode() != upload_id:
        raise JobNotFound(f"no multipart upload {upload_id!r} for key {key!r}")
    if record.state != "uploading":
        raise Conflict(f"the job is {record.state}; its upload is over")
    return record


def _most_parts(record: JobRecord) -> int:
    """Parts a file of the declared size can need (Uppy's parts are >= 5 MiB)."""
    if not record.size_bytes:
        return defaults.MAX_PARTS
    needed = -(-record.size_bytes // defaults.MIN_PART_BYTES)
    return min(max(needed, 1), defaults.MAX_PARTS)


def _check_part_number(number: int, record: JobRecord) -> None:
    most = _most_parts(record)
    if not 1 <= number <= most:
        raise InvalidRequest(f"part numbers go from 1 to {most} for this upload")


def _part_numbers(text: str, record: JobRecord) -> list[int]:
    try:
        numbers = sorted({int(item) for item in text.split(",")})
    except ValueError:
        raise InvalidRequest(
            "partNumbers must be numbers separated by commas"
        ) from None
    if len(numbers) > defaults.MAX_PARTS_PER_BATCH:
        raise InvalidRequest(
            f"sign at most {defaults.MAX_PARTS_PER_BATCH} parts per request"
        )
    for number in numbers:
        _check_part_number(number, record)
    return numbers


def _chosen_parts(data: MultipartDone, stored: list[Part]) -> list[Part]:
    """The parts the client names, as storage holds them (their true sizes)."""
    if not data.parts:
        raise InvalidRequest("parts must list at least one part")
    by_number = {part.number: part for part in stored}
    chosen = []
    for sent in sorted(data.parts, key=lambda p: p.part_number):
        part = by_number.get(sent.part_number)
        if part is None or part.etag.strip('"') != sent.e_tag.strip('"'):
            raise InvalidRequest(
                f"part {sent.part_number} is not stored with that ETag; "
                "list the parts to see what storage holds"
            )
        chosen.append(part)
    if len({part.number for part in chosen}) != len(chosen):
        raise InvalidRequest("parts lists a part twice")
    return chosen


def _check_joined_size(
    ctx: Context, record: JobRecord, upload_id: str, size: int
) -> None:
    """Refuse an object over the limit, or other than declared; fix an unknown size."""
    limit = ctx.settings.max_upload_bytes
    reason = None
    if size > limit:
        reason = f"the upload is {size} bytes; the limit is {limit}"
    elif record.size_bytes and size != record.size_bytes:
        reason = (
            f"the parts add up to {size} bytes, "
            f"but {record.size_bytes} bytes were declared"
        )
    if reason is None:
        if not record.size_bytes:
            ctx.records.update(record.id, only_in=("uploading",), size_bytes=size)
            UPLOAD_BYTES.observe(size)
        return

    MultipartUploads(ctx.storage).abort(record.source_key, upload_id)
    ctx.records.transition(
        record.id, "failed", ("uploading",),
        stage="", failed_reason=reason, finished_at=utcnow(),
    )  # fmt: skip
    logger.warning("job %s: multipart upload refused: %s", record.id, reason)
    if size > limit:
        raise PayloadTooLarge(reason)
    raise InvalidRequest(reason)
