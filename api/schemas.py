"""Request and response bodies. JSON names are camelCase, as clients expect."""

from __future__ import annotations

from typing import Any

import msgspec


class UploadRequest(msgspec.Struct, rename="camel", forbid_unknown_fields=False):
    """Ask for a place to upload one video."""

    filename: str
    content_type: str
    size: int
    profile: str | None = None
    """The encoding profile (`default`, `hls`, `mp4` or one configured)."""


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
