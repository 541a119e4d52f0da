"""What a user would find wrong with a system's jobs once the faults are over.

`History` reads every change of every job from the outbox, with a consumer
group of its own, so that the audit can tell a job completed once from one
completed twice. `audit_job` checks one job the way its owner would: its
status, its outputs (all there, none extra, the whole video) and its row in
the durable record.
"""

from __future__ import annotations

import logging
import threading
import time
from collections import defaultdict
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path

from redis import Redis
from redis.exceptions import RedisError

from tests.media import ffprobe
from vidqueue.context import Context
from vidqueue.durable.outbox import OutboxReader, read_record
from vidqueue.errors import DatabaseUnavailable
from vidqueue.keys import output_prefix
from vidqueue.records import JobRecord

logger = logging.getLogger("tests.audit")

AUDIT_GROUP = "audit"
DURATION_TOLERANCE_SECONDS = 0.15
DEFAULT_OUTPUTS = ("poster.jpg", "video.mp4")
"""What the default profile publishes for each job."""


class History(OutboxReader):
    """Every change of every job, read from the outbox as it is written.

    Create it before the first job, so that its group holds the stream's
    entries until it has read them.
    """

    def __init__(self, redis: Redis):
        super().__init__(redis, AUDIT_GROUP, consumer="auditor")
        self.changes: dict[str, dict[int, JobRecord]] = defaultdict(dict)
        self._lock = threading.Lock()
        self._ensure_group()

    def run(self, stop: threading.Event) -> None:
        """Read until `stop` is set, riding out Redis restarts."""
        while not stop.is_set():
            try:
                self.read_once(block_s=0.5)
            except RedisError as exc:
                logger.info("history: Redis unavailable (%s)", type(exc).__name__)
                stop.wait(0.5)
            except Exception:
                logger.exception("history: reading the outbox failed")
                stop.wait(0.5)

    def catch_up(self) -> None:
        """Read every change written so far."""
        while self.read_once():
            pass

    def read_once(self, block_s: float = 0.0) -> int:
        """Read and keep one batch of changes; returns how many entries."""
        with self._lock:
            entries = self._read(block_s)
            for entry_id, entry_fields in entries:
                record = read_record(entry_id, entry_fields)
                if record is not None:
                    self.changes[record.id][record.version] = record
            if entries:
                self._acknowledge([entry_id for entry_id, _ in entries])
            return len(entries)

    def states(self, job_id: str) -> list[str]:
        """The job's states, change by change, in order."""
        versions = self.changes.get(job_id, {})
        return [versions[v].state for v in sorted(versions)]

    def times_ended(self, job_id: str, state: str) -> int:
        """How many times the job moved into `state` (once, for a sound job)."""
        states = self.states(job_id)
        return sum(
            1
            for i, now in enumerate(states)
            if now == state and (i == 0 or states[i - 1] != state)
        )


@dataclass
class JobAudit:
    """One job as its owner finds it after the campaign."""

    job_id: str
    expected: str
    state: str
    failed_reason: str
    attempts: int
    times_ended: int
    outputs: list[str]
    expected_outputs: list[str]
    video_seconds: float | None
    source_seconds: float | None
    row_state: str | None
    took_s: float | None
    """Seconds from the job's creation to its end, by its record."""
    problems: list[str] = field(default_factory=list)

    @property
    def ended(self) -> bool:
        """True once the job reached a final state."""
        return self.state in ("completed", "failed", "cancelled")

    @property
    def duplicate_outputs(self) -> bool:
        """True when more than one set of outputs was made."""
        return self.times_ended > 1 or bool(
            set(self.outputs) - set(self.expected_outputs)
        )


def audit_job(
    ctx: Context,
    history: History,
    status: dict,
    source: Path,
    expected: str = "completed",
) -> JobAudit:
    """Check one job as its owner would; `problems` says what is wrong.

    `status` is the job's answer of `GET /status/{jobId}`; `expected` the
    state it must end in (`failed` for a file that is no video).
    """
    job_id = status["jobId"]
    record = ctx.records.get(job_id)
    prefix = output_prefix(record.user_id if record else "", job_id)
    outputs = sorted(
        key.removeprefix(prefix)
        for key, _ in ctx.storage.list_objects(ctx.storage.output_bucket, prefix)
    )
    wanted = list(DEFAULT_OUTPUTS) if expected == "completed" else []
    result = status.get("result") or {}
    found = JobAudit(
        job_id=job_id,
        expected=expected,
        state=status["state"],
        failed_reason=status.get("failedReason") or "",
        attempts=record.attempts if record else 0,
        times_ended=history.times_ended(job_id, status["state"]),
        outputs=outputs,
        expected_outputs=wanted,
        video_seconds=_seconds(result["videoUrl"]) if result.get("videoUrl") else None,
        source_seconds=_seconds(source) if expected == "completed" else None,
        row_state=_row_state(ctx, record),
        took_s=_took(record),
    )
    found.problems = _problems(found)
    return found


def _problems(job: JobAudit) -> list[str]:
    problems = []
    if job.state != job.expected:
        problems.append(f"is {job.state} ({job.failed_reason}), not {job.expected}")
    if job.times_ended != 1:
        problems.append(f"became {job.state} {job.times_ended} times")
    if job.outputs != job.expected_outputs:
        problems.append(f"has outputs {job.outputs}, not {job.expected_outputs}")
    if job.source_seconds is not None and (
        job.video_seconds is None
        or abs(job.video_seconds - job.source_seconds) > DURATION_TOLERANCE_SECONDS
    ):
        problems.append(
            f"video lasts {job.video_seconds} s, its source {job.source_seconds} s"
        )
    if job.row_state != job.state:
        problems.append(f"the durable record says {job.row_state}")
    return [f"job {job.job_id}: {problem}" for problem in problems]


def _took(record: JobRecord | None) -> float | None:
    if record is None or not record.finished_at:
        return None
    began, ended = (
        datetime.fromisoformat(moment.replace("Z", "+00:00"))
        for moment in (record.created_at, record.finished_at)
    )
    return (ended - began).total_seconds()


def _seconds(path_or_url: str | Path) -> float | None:
    try:
        return float(ffprobe(path_or_url)["format"]["duration"])
    except Exception:  # no video there at all: the audit says so
        return None


def _row_state(
    ctx: Context, record: JobRecord | None, timeout_s: float = 60
) -> str | None:
    """The row's state once the outbox has caught up with the record."""
    if record is None or ctx.durable is None:
        return None
    deadline = time.monotonic() + timeout_s
    row = None
    while time.monotonic() < deadline:
        try:
            row = ctx.durable.fetch(record.id)
        except DatabaseUnavailable:
            row = None
        if row is not None and row.version >= record.version:
            return row.state
        time.sleep(0.2)
    return row.state if row is not None else None
