"""The RQ job: probe -> transcode -> publish -> complete, or fail, or retry.

The queue names `process_video` by path, so the API and the trigger never
import this package. Failures become job states in two places only:
`process_video` fails bad input at once (a retry cannot help) and stops
quietly on cancellation; `on_failure` (RQ's failure callback, also called for
jobs whose worker died) chooses between another attempt and `failed` for
everything else.
"""

from __future__ import annotations

import logging
import os
import tempfile
import time
from dataclasses import dataclass
from functools import cache
from pathlib import Path

from rq import get_current_job

from processor.probe import MediaInfo, probe
from processor.publish import publish_folder, sign_playlists
from processor.transcode import (
    Watch,
    hls_command,
    mp4_command,
    poster_command,
    run_ffmpeg,
)
from vidqueue import defaults
from vidqueue.context import Context
from vidqueue.errors import BadInput, InvalidRequest, JobCancelled, VidqueueError
from vidqueue.keys import output_prefix
from vidqueue.profiles import Profile
from vidqueue.records import JobRecord, utcnow

logger = logging.getLogger("vidqueue.worker")

# Where each part of the job ends on the 0-100 progress scale.
PROBED_AT = 5
ENCODED_AT = 90


@cache
def _context() -> Context:
    return Context.from_env()


def warm_up() -> None:
    """Build the worker's context and clients ahead of the first job.

    RQ forks a work-horse per job; what the worker process built before the
    fork, each horse inherits instead of building again (the S3 client alone
    takes a good part of a second).
    """
    ctx = _context()
    ctx.storage.client  # noqa: B018 - building it is the point
    ctx.profiles  # noqa: B018


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
        self.stage = ""

    def report(self, percent: float, stage: str) -> None:
        """Record `percent` (0-100) in `stage`, unless a write happened just now.

        A new stage is always written, so every stage shows at least once.
        """
        value = int(max(0, min(percent, 100)))
        now = time.monotonic()
        new_stage = stage != self.stage
        too_soon = now - self.last_write < defaults.PROGRESS_WRITE_INTERVAL_SECONDS
        if not new_stage and (value <= self.last_value or too_soon):
            return
        self.ctx.records.update(
            self.job_id, only_in=("active",), progress=value, stage=stage
        )
        self.last_write, self.last_value, self.stage = now, value, stage

    def span(self, start: float, end: float, stage: str):
        """A callback mapping a fraction (0.0-1.0) of one step onto `start`-`end`."""
        return lambda done: self.report(start + (end - start) * done, stage)


def process_video(job_id: str) -> str:
    """Run one job through its profile; returns the state it ended in.

    The result itself (with its URLs, presigned and so secret) lives in the
    job record only: RQ keeps a job's return value in Redis and logs it.
    """
    ctx = _context()
    worker = _worker_name()
    record = ctx.records.get(job_id)
    if record is None or record.state not in ("waiting", "active"):
        state = record.state if record else "unknown"
        logger.info("job %s: is %s, not run (worker %s)", job_id, state, worker)
        return state

    attempts = ctx.records.increment_attempts(job_id)
    started = ctx.records.transition(
        job_id, "active", ("waiting", "active"),
        stage="probing", progress=0, started_at=utcnow(), failed_reason="",
    )  # fmt: skip
    if not started:
        return ctx.records.state_of(job_id) or "unknown"
    logger.info("job %s: started, attempt %d (worker %s)", job_id, attempts, worker)

    try:
        Pipeline(ctx, record, worker).run()
        return "completed"
    except BadInput as exc:
        fail(ctx, job_id, str(exc))
        logger.info("job %s: failed: %s (worker %s)", job_id, exc, worker)
    except JobCancelled:
        _stop_attempt(ctx, record, worker)
    return ctx.records.state_of(job_id) or "unknown"


def _stop_attempt(ctx: Context, record: JobRecord, worker: str) -> None:
    """End an attempt whose job left `active` while it ran.

    A cancelled job loses its outputs. Any other job was taken over by
    another attempt (this one's worker lost its lease while its work-horse
    ran on), which may have published and completed it already: its outputs
    stay.
    """
    state = ctx.records.state_of(record.id)
    if state != "cancelled":
        logger.warning(
            "job %s: %s by another attempt; this one stops (worker %s)",
            record.id, "completed" if state == "completed" else "taken over", worker,
        )  # fmt: skip
        return
    removed = ctx.storage.delete_prefix(
        ctx.storage.output_bucket, output_prefix(record.user_id, record.id)
    )
    logger.info(
        "job %s: cancelled, %d outputs removed (worker %s)", record.id, removed, worker
    )


@dataclass
class Pipeline:
    """The steps of one job, in order: check, probe, encode, publish, complete."""

    ctx: Context
    record: JobRecord
    worker: str

    def run(self) -> dict:
        """Produce and publish the profile's outputs; complete the job."""
        began = time.monotonic()
        settings = self.ctx.settings
        try:
            profile = self.ctx.profiles.get(self.record.profile)
        except InvalidRequest as exc:
            raise BadInput(str(exc)) from None
        progress = Progress(self.ctx, self.record.id)
        self.check_object()

        with tempfile.TemporaryDirectory(prefix=f"vidqueue-{self.record.id}-") as tmp:
            work = Path(tmp)
            source = self.source(work)
            info = probe(source, settings.max_duration_seconds)
            logger.debug(
                "job %s: probed %s, %.1f s, %dx%d", self.record.id,
                info.format_name, info.duration, info.width, info.height,
            )  # fmt: skip
            outputs = work / "out"
            outputs.mkdir()
            progress.report(PROBED_AT, "transcoding")
            renditions = self.encode(source, info, profile, outputs, progress)

            progress.report(ENCODED_AT, "publishing")
            prefix = output_prefix(self.record.user_id, self.record.id)
            sign_playlists(self.ctx.storage, outputs, prefix)
            publish_folder(self.ctx.storage, outputs, prefix)
            result = self.result(info, profile, outputs, prefix, renditions)

        self.complete(result)
        elapsed = time.monotonic() - began
        self.ctx.records.record_throughput(info.duration, elapsed)
        logger.info(
            "job %s: completed in %.1f s (%.1f s of video, profile %s, worker %s)",
            self.record.id, elapsed, info.duration, profile.name, self.worker,
        )  # fmt: skip
        return result

    def check_object(self) -> None:
        """Refuse an object that vanished or is not the size the client declared."""
        record = self.record
        found = self.ctx.storage.head(record.source_bucket, record.source_key)
        if found is None:
            raise BadInput("upload missing: the uploaded file is no longer in storage")
        if found.size != record.size_bytes:
            raise BadInput(
                f"upload size mismatch: the object is {found.size} bytes, "
                f"but {record.size_bytes} bytes were declared"
            )

    def source(self, work: Path) -> str:
        """Where ffmpeg reads the source: a presigned GET, or a local download."""
        record = self.record
        if self.ctx.settings.source_read == "download":
            path = work / "source"
            self.ctx.storage.download_file(
                record.source_bucket, record.source_key, path
            )
            return str(path)
        return self.ctx.storage.presign_get(
            record.source_bucket,
            record.source_key,
            self.ctx.settings.job_timeout_seconds,
        )

    def encode(
        self,
        source: str,
        info: MediaInfo,
        profile: Profile,
        outputs: Path,
        progress: Progress,
    ) -> list[dict]:
        """Run the profile's ffmpeg commands; returns the HLS renditions made."""
        threads = _ffmpeg_threads(self.ctx.settings.concurrency)
        ladder = profile.ladder_for(info.height)
        steps = []
        if profile.mp4:
            command = mp4_command(source, info, outputs / "video.mp4", profile, threads)
            steps.append(("transcoding", command, 1.0))
        if ladder:
            (outputs / "hls").mkdir()
            command = hls_command(
                source, info, outputs / "hls", profile, ladder, threads
            )
            steps.append(("transcoding", command, 1.0 + 0.5 * len(ladder)))
        if profile.poster:
            command = poster_command(source, info, outputs / "poster.jpg")
            steps.append(("poster", command, 0.05))

        total = sum(weight for _, _, weight in steps)
        start = PROBED_AT
        for stage, command, weight in steps:
            end = start + (ENCODED_AT - PROBED_AT) * weight / total
            progress.report(start, stage)
            run_ffmpeg(
                command,
                info.duration,
                progress.span(start, end, stage),
                self.watch(info),
            )
            start = end
        return [
            {"name": r.name, "height": r.height, "bitrate_kbps": r.video_kbps}
            for r in ladder
        ]

    def watch(self, info: MediaInfo) -> Watch:
        """The limits of one ffmpeg run of this job."""
        settings = self.ctx.settings
        job_id = self.record.id
        return Watch(
            stall_s=settings.stall_timeout_seconds,
            limit_s=max(600.0, info.duration * settings.time_limit_factor),
            cancelled=lambda: self.ctx.records.state_of(job_id) != "active",
        )

    def result(
        self,
        info: MediaInfo,
        profile: Profile,
        outputs: Path,
        prefix: str,
        renditions: list[dict],
    ) -> dict:
        """The job's result: where its outputs are and what they hold."""
        storage = self.ctx.storage
        result: dict = {"profile": profile.name, "duration": round(info.duration, 3)}
        if profile.mp4:
            mp4 = outputs / "video.mp4"
            made = probe(str(mp4), float("inf"))
            result.update(
                video_url=storage.output_url(prefix + "video.mp4"),
                width=made.width,
                height=made.height,
                size_bytes=mp4.stat().st_size,
            )
        if renditions:
            hls_url = storage.output_url(prefix + "hls/master.m3u8")
            result["hls_url"] = hls_url
            result.setdefault("video_url", hls_url)
            result.setdefault("width", info.width - info.width % 2)
            result.setdefault("height", renditions[0]["height"])
            result.setdefault(
                "size_bytes",
                sum(
                    p.stat().st_size
                    for p in (outputs / "hls").rglob("*")
                    if p.is_file()
                ),
            )
            result["renditions"] = renditions
        if profile.poster:
            result["poster_url"] = storage.output_url(prefix + "poster.jpg")
        return result

    def complete(self, result: dict) -> None:
        """Move the job to `completed`; a job cancelled meanwhile stays cancelled."""
        done = self.ctx.records.transition(
            self.record.id, "completed", ("active",),
            progress=100, stage="", result=result, finished_at=utcnow(),
        )  # fmt: skip
        if not done:
            raise JobCancelled("the job was cancelled while publishing")


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
    name = exc_type.__name__ if exc_type else "error"
    if name == "AbandonedJobError":
        return "the worker stopped while processing the video"
    if name == "JobTimeoutException":
        return "processing took longer than the time limit"
    if isinstance(exc_value, VidqueueError):
        return str(exc_value)
    return f"internal error while processing ({name})"


def _ffmpeg_threads(concurrency: int) -> int:
    # 0 lets ffmpeg use every core; with several jobs at once, share the cores.
    if concurrency <= 1:
        return 0
    return max(1, (os.cpu_count() or 1) // concurrency)
