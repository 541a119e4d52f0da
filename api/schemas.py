"""Request and response bodies. JSON names are camelCase, as clients expect."""

from __future__ import annotations

from typing import Any, Literal

import msgspec


class UploadRequest(msgspec.Struct, rename="camel", forbid_unknown_fields=False):
    """Ask for a place to upload one video."""

    filename: str
    content_type: str
    size: int
    profile: str | None = None
    """The encoding profile (`default`, `hls`, `mp4` or one configured)."""
    method: Literal["PUT", "POST"] = "PUT"
    """`PUT` (a presigned PUT) or `POST` (a form POST with a signed policy)."""
    callback_url: str | None = None
    """An http(s) URL that gets the job's status, signed, when the job ends
    (when the server has webhooks on); instead of the server's own URL."""


class UploadTicket(msgspec.Struct, rename="camel"):
    """Where and how to send the bytes of one upload."""

    job_id: str
    method: str
    url: str
    headers: dict[str, str]
    key: str
    expires_at: str
    queue_position: int
    estimated_time: int
    fields: dict[str, str] | None = None
    """With `method` POST: the form fields to send before the file."""


class JobStatus(msgspec.Struct, rename="camel"):
    """A job as the API shows it."""

    job_id: str
    state: str
    progress: int
    result: dict[str, Any] | None
    failed_reason: str | None
    queue_position: int | None
    stage: str | None
    created_at: str
    updated_at: str
    estimated_time: int | None = None
    filename: str | None = None


class JobList(msgspec.Struct):
    """The caller's most recent jobs, newest first."""

    jobs: list[JobStatus]


class LegacyUploadAnswer(msgspec.Struct, rename="camel"):
    """The answer of `POST /upload`, shaped as the original system's."""

    message: str
    job_id: str
    queue_position: int
    estimated_time: int


class QueueInfo(msgspec.Struct, rename="camel"):
    """Queue figures: counts by state, workers and measured throughput."""

    waiting: int
    active: int
    completed: int
    failed: int
    total: int
    uploading: int
    cancelled: int
    workers: int
    throughput: dict[str, float]


class ErrorBody(msgspec.Struct):
    """Every error answer: a stable code and a sentence for people."""

    error: str
    detail: str


class ReadyAnswer(msgspec.Struct):
    """Readiness: `ok` or `unavailable`, and what each dependency said."""

    status: str
    checks: dict[str, str]


# Multipart uploads, shaped as Uppy's AwsS3 plugin calls a Companion server:
# its names, including the PascalCase of S3's own part fields.


class MultipartStart(msgspec.Struct):
    """Start a multipart upload: the file's name and type, Uppy's metadata.

    The size is optional (Uppy does not send it unless asked to, in
    `size` or `metadata.size`); without it, the size is measured at complete.
    """

    filename: str
    type: str
    metadata: dict[str, Any] = msgspec.field(default_factory=dict)
    size: int | None = None


class MultipartStarted(msgspec.Struct, rename="camel"):
    """Where the parts go: the object key, S3's UploadId and the job."""

    key: str
    upload_id: str
    job_id: str


class PartUrl(msgspec.Struct):
    """A presigned PUT for one part, and its lifetime in seconds."""

    url: str
    expires: int
    headers: dict[str, str] = msgspec.field(default_factory=dict)


class PartUrls(msgspec.Struct, rename="camel"):
    """Presigned PUTs for several parts, by part number."""

    presigned_urls: dict[str, str]


class StoredPart(msgspec.Struct, rename="pascal"):
    """A part that storage holds, as S3's ListParts names it."""

    part_number: int
    size: int
    e_tag: str = msgspec.field(name="ETag")


class SentPart(msgspec.Struct, rename="pascal"):
    """A part the client sent: its number and the ETag storage answered."""

    part_number: int
    e_tag: str = msgspec.field(name="ETag")


class MultipartDone(msgspec.Struct):
    """The parts to join, in any order."""

    parts: list[SentPart]


class MultipartJoined(msgspec.Struct, rename="camel"):
    """The object is complete and handed to the trigger; the job's status."""

    location: str
    job_id: str
    status: JobStatus


class PostUpload(msgspec.Struct, rename="camel"):
    """A form POST straight to storage, as Uppy's `getUploadParameters` wants."""

    method: str
    url: str
    fields: dict[str, str]
    expires: int
    job_id: str
    headers: dict[str, str] = msgspec.field(default_factory=dict)
