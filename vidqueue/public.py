"""The public view of a job: what `GET /status/{jobId}` answers and webhooks carry.

Names are camelCase, as clients expect; fields that only vidqueue needs
(storage keys, the callback URL, the record's version) stay out.
"""

from __future__ import annotations

from typing import Any

from vidqueue.records import JobRecord

HIDDEN_RESULT_FIELDS = frozenset({"video_key"})


def public_status(
    record: JobRecord,
    queue_position: int | None = None,
    estimated_time: int | None = None,
) -> dict[str, Any]:
    """The job as the API shows it, given its queue position and estimate."""
    return {
        "jobId": record.id,
        "state": record.state,
        "progress": record.progress,
        "result": public_result(record.result),
        "failedReason": record.failed_reason or None,
        "queuePosition": queue_position,
        "stage": record.stage or None,
        "createdAt": record.created_at,
        "updatedAt": record.updated_at,
        "estimatedTime": estimated_time,
        "filename": record.filename,
    }


def public_result(result: dict | None) -> dict | None:
    """The job's result with camelCase names and no internal fields."""
    if not result:
        return None
    return {
        camel_case(k): v for k, v in result.items() if k not in HIDDEN_RESULT_FIELDS
    }


def camel_case(name: str) -> str:
    """`size_bytes` as `sizeBytes`."""
    head, *rest = name.split("_")
    return head + "".join(part.title() for part in rest)
