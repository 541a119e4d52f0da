"""The poller: HEADs the objects of jobs still `uploading`.

Its cost grows with the number of pending uploads, never with the size of the
bucket: it never lists the upload folders (Storj lists encrypted keys out of
order, so a listing cursor would miss objects). Fresh uploads are checked
every `poll_interval_seconds`; older ones less often, up to every
`POLL_MAX_INTERVAL_SECONDS`, since an upload that has not arrived in minutes is
a large one. An upload still missing when its presigned request has expired,
plus `upload_grace_seconds`, fails with "upload never arrived".

The same process lists the inbox now and then, and listens to MinIO's bucket
events when `VIDQUEUE_MINIO_LISTEN=on`.
"""

from __future__ import annotations

import logging
import threading
import time
from datetime import datetime

from redis.exceptions import RedisError

from handlers.trigger import Outcome, accept_upload, expire_upload
from vidqueue import defaults
from vidqueue.context import Context
from vidqueue.errors import StorageError
from vidqueue.records import JobRecord

logger = logging.getLogger("vidqueue.poller")

FRESH_SECONDS = 60.0


def check_interval(age_s: float, base_s: float) -> float:
    """Seconds until a pending upload of age `age_s` is checked again."""
    if age_s < FRESH_SECONDS:
        return base_s
    return min(max(base_s, age_s / 10), defaults.POLL_MAX_INTERVAL_SECONDS)


class Poller:
    """Checks pending uploads, each when it is due."""

    def __init__(self, ctx: Context):
        self.ctx = ctx
        self.due: dict[str, float] = {}

    def poll_once(self, now: float | None = None) -> dict[Outcome, int]:
        """Check every pending upload that is due; returns the outcomes."""
        now = time.time() if now is None else now
        tally = dict.fromkeys(Outcome, 0)
        pending = self.ctx.records.pending_uploads(limit=100_000)
        for job_id in pending:
            if self.due.get(job_id, 0.0) > now:
                continue
            try:
                outcome = self.check(job_id, now)
            except StorageError as exc:
                logger.warning("job %s: poll failed, will try again: %s", job_id, exc)
                continue
            tally[outcome] += 1
        alive = set(pending)
        self.due = {k: v for k, v in self.due.items() if k in alive}
        return tally

    def check(self, job_id: str, now: float) -> Outcome:
        """HEAD one upload; accept it, expire it, or schedule the next check."""
        record = self.ctx.records.get(job_id)
        if record is None:
            return Outcome.UNKNOWN
        if record.state != "uploading":
            return Outcome.DUPLICATE
        info = self.ctx.storage.head(record.source_bucket, record.source_key)
        if info is not None:
            return accept_upload(self.ctx, record, info)
        if _expired(record, now, self.ctx.settings.upload_grace_seconds):
            return expire_upload(self.ctx, record)
        age = now - _timestamp(record.created_at)
        self.due[job_id] = now + check_interval(
            age, self.ctx.settings.poll_interval_seconds
        )
        return Outcome.NOT_ARRIVED


def poll_once(ctx: Context) -> dict[Outcome, int]:
    """Check every pending upload once, due or not."""
    return Poller(ctx).poll_once()


def _timestamp(iso: str) -> float:
    return datetime.fromisoformat(iso.replace("Z", "+00:00")).timestamp()


def _expired(record: JobRecord, now: float, grace_s: float) -> bool:
    if not record.upload_expires_at:
        return False
    return now > _timestamp(record.upload_expires_at) + grace_s


def run_poller(ctx: Context, stop: threading.Event | None = None) -> None:
    """Poll until `stop` is set; list the inbox and listen to events beside it."""
    stop = stop or threading.Event()
    settings = ctx.settings
    poller = Poller(ctx)
    if settings.minio_listen == "on":
        from handlers.minio_events import start_listener

        start_listener(ctx, stop)
    inbox_due = 0.0
    logger.info("poller started, every %.1f s", settings.poll_interval_seconds)
    while not stop.is_set():
        # Redis restarting or failing over must not end the process, which
        # also runs the outbox pump, the reconcile and webhook dispatch.
        try:
            _report(poller.poll_once())
            if settings.inbox_interval_seconds > 0 and time.monotonic() >= inbox_due:
                from handlers.inbox import scan_inbox

                scan_inbox(ctx)
                inbox_due = time.monotonic() + settings.inbox_interval_seconds
        except RedisError as exc:
            logger.warning("poll failed, Redis unavailable; will try again: %s", exc)
        stop.wait(settings.poll_interval_seconds)
    logger.info("poller stopped")


def _report(tally: dict[Outcome, int]) -> None:
    if tally[Outcome.ENQUEUED] or tally[Outcome.REJECTED] or tally[Outcome.EXPIRED]:
        logger.info(
            "poll: %d enqueued, %d rejected, %d expired, %d still uploading",
            tally[Outcome.ENQUEUED], tally[Outcome.REJECTED],
            tally[Outcome.EXPIRED], tally[Outcome.NOT_ARRIVED],
        )  # fmt: skip
