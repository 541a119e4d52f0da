"""The RQ job: probe -> transcode -> publish -> complete, or fail, or retry.

The queue names `process_video` by path, so the API and the trigger never
import this package. Failures become job states in exactly two places:
`process_video` fails bad input at once (a retry cannot help), and
`on_failure` (RQ's failure callback, also called for jobs whose worker died)
decides between another attempt and `failed` for everything else.
"""

from __future__ import annotations

import logging
import os
import tempfile
import time
from functools import cache
from pathlib import Path

from rq import get_current_job

from processor.probe import probe
from processor.transcode import mp4_command, run_ffmpeg
from vidqueue import defaults
from vidqueue.context import Context
from vidqueue.errors import BadInput, VidqueueError
from vidqueue.keys import output_prefix
from vidqueue.records import JobRecord, utcnow

logger = logging.getLogger("vidqueue.worker")

# Share of the 0-100 progress scale that each stage ends at.
PROBED_AT = 5
TRANSCODED_AT = 95


@cache
def _context() -> Context:
    return Context.from_env()


def _worker_name() -> str:
    job = get_current_job()
    return (job.worker_name if job else None) or "inline"


class Progress:
    """Writes a job's progress to its record a few times a second at most."""

    def __init__(self, ctx: Context, job_id: str):
        self.ctx = ctx
        self.job_id = job_id
        self.last_write = 0.0
        self.last_value = -1

    def report(self, percent: float, stage: str, force: bool = False) -> None:
        """Record `percent` (0-100) in `stage`, unless a write happened just now."""
        value = int(max(0, min(percent, 100)))
        now = time.monotonic()
        if not force and (
            value == self.last_value
            or now - self.last_write < defaults.PROGRESS_WRITE_INTERVAL_SECONDS
        ):
            return
        self.ctx.records.update(
            self.job_id, only_in=("active",), progress=value, stage=stage
        )
        self.last_write, self.last_value = now, value


def process_video(job_id: str) -> dict | None:
    """Turn one uploaded video into the default profile's MP4.

    Returns the job's result, or None when the job was not runnable (cancelled
    meanwhile, or its record is gone).
    """
    ctx = _context()
    worker = _worker_name()
    record = ctx.records.get(job_id)
    if record is None:
        logger.warning("job %s: no record, nothing to do (worker %s)", job_id, worker)
        return None

    attempts = ctx.records.increment_attempts(job_id)
    started = ctx.records.transition(
        job_id, "active", ("waiting", "active"),
        stage="probing", progress=0, started_at=utcnow(), failed_reason="",
    )  # fmt: skip
    if not started:
        logger.info("job %s: is %s, not run (worker %s)", job_id, record.state, worker)
        return None
    logger.info("job %s: started, attempt %d (worker %s)", job_id, attempts, worker)

    try:
        return _run(ctx, record)
    except BadInput as exc:
        fail(ctx, job_id, str(exc))
        logger.info("job %s: failed: %s (worker %s)", job_id, exc, worker)
        return None


def _run(ctx: Context, record: JobRecord) -> dict:
    began = time.monotonic()
    progress = Progress(ctx, record.id)
    source = ctx.storage.presign_get(
        record.source_bucket, record.source_key, ctx.settings.job_timeout_seconds
    )

    info = probe(source, ctx.settings.max_duration_seconds)
    progress.report(PROBED_AT, "transcoding", force=True)
    logger.debug(
        "job %s: probed %s, %.1f s", record.id, info.format_name, info.duration
    )

    with tempfile.TemporaryDirectory(prefix=f"vidqueue-{record.id}-") as workdir:
        output = Path(workdir) / "video.mp4"
        command = mp4_command(source, info, output, threads=_ffmpeg_threads(ctx))
        span = TRANSCODED_AT - PROBED_AT
        run_ffmpeg(
            command,
            info.duration,
            lambda done: progress.report(PROBED_AT + span * done, "transcoding"),
            timeout_s=_hard_limit_s(info.duration),
        )

        progress.report(TRANSCODED_AT, "publishing", force=True)
        key = output_key(record)
        ctx.storage.upload_file(output, key, "video/mp4")
        size = output.stat().st_size

    result = {
        "video_url": ctx.storage.output_url(key),
        "video_key": key,
        "duration": round(info.duration, 3),
        "width": info.width - info.width % 2,
        "height": info.height - info.height % 2,
        "size_bytes": size,
    }
    elapsed = time.monotonic() - began
    ctx.records.transition(
        record.id, "completed", ("active",),
        progress=100, stage="", result=result, finished_at=utcnow(),
    )  # fmt: skip
    ctx.records.record_throughput(info.duration, elapsed)
    logger.info(
        "job %s: completed in %.1f s (%.1f s of video, worker %s)",
        record.id, elapsed, info.duration, _worker_name(),
    )  # fmt: skip
    return result


def output_key(record: JobRecord) -> str:
    """Where the job's MP4 goes; fixed per job so a rerun overwrites it."""
    return output_prefix(record.user_id, record.id) + "video.mp4"


def fail(ctx: Context, job_id: str, reason: str) -> bool:
    """Move a job to `failed` with a reason a person can read."""
    return ctx.records.transition(
        job_id, "failed", ("waiting", "active"),
        failed_reason=reason, stage="", finished_at=utcnow(),
    )  # fmt: skip


def on_failure(job, connection, exc_type, exc_value, traceback) -> None:
    """RQ's failure callback: another attempt later, or `failed` for good.

    RQ calls it after an exception in `process_video` and for jobs whose worker
    died (AbandonedJobError); it runs before RQ decides to retry, so
    `retries_left` still counts the retry to come.
    """
    ctx = _context()
    reason = _reason(exc_type, exc_value)
    if job.retries_left:
        ctx.records.transition(
            job.id, "waiting", ("waiting", "active"), stage="retrying",
            failed_reason="",
        )  # fmt: skip
        logger.warning(
            "job %s: attempt failed, will retry (%d left): %s (worker %s)",
            job.id, job.retries_left, reason, job.worker_name,
        )  # fmt: skip
        return
    fail(ctx, job.id, reason)
    logger.error("job %s: failed: %s (worker %s)", job.id, reason, job.worker_name)


def _reason(exc_type, exc_value) -> str:
    if exc_type is not None and exc_type.__name__ == "AbandonedJobError":
        return "the worker stopped while processing the video"
    if exc_type is not None and exc_type.__name__ == "JobTimeoutException":
        return "processing took longer than the time limit"
    if isinstance(exc_value, VidqueueError):
        return str(exc_value)
    name = exc_type.__name__ if exc_type else "error"
    return f"internal error while processing ({name})"


def _ffmpeg_threads(ctx: Context) -> int:
    # 0 lets ffmpeg use every core; with several jobs at once, share the cores.
    if ctx.settings.concurrency <= 1:
        return 0
    return max(1, (os.cpu_count() or 1) // ctx.settings.concurrency)


def _hard_limit_s(duration_s: float) -> float:
    # Generous: ten times slower than real time, never under ten minutes.
    return max(600.0, duration_s * 10)
