"""The poller: HEADs the objects of jobs still `uploading`.

Its cost grows with the number of pending uploads, never with the size of the
bucket: it never lists the bucket (Storj lists encrypted keys out of order, so
a listing cursor would miss objects).
"""

from __future__ import annotations

import logging
import threading

from handlers.trigger import Outcome, check_upload
from vidqueue.context import Context
from vidqueue.errors import StorageError

logger = logging.getLogger("vidqueue.poller")


def poll_once(ctx: Context) -> dict[Outcome, int]:
    """Check every pending upload once; returns how many ended in each outcome."""
    tally = dict.fromkeys(Outcome, 0)
    for job_id in ctx.records.pending_uploads():
        try:
            outcome = check_upload(ctx, job_id)
        except StorageError as exc:
            logger.warning("job %s: poll failed, will try again: %s", job_id, exc)
            continue
        tally[outcome] += 1
    return tally


def run_poller(ctx: Context, stop: threading.Event | None = None) -> None:
    """Poll every `poll_interval_seconds` until `stop` is set."""
    stop = stop or threading.Event()
    interval = ctx.settings.poll_interval_seconds
    logger.info("poller started, every %.1f s", interval)
    while not stop.is_set():
        tally = poll_once(ctx)
        if tally[Outcome.ENQUEUED] or tally[Outcome.REJECTED]:
            logger.info(
                "poll: %d enqueued, %d rejected, %d still uploading",
                tally[Outcome.ENQUEUED],
                tally[Outcome.REJECTED],
                tally[Outcome.NOT_ARRIVED],
            )
        stop.wait(interval)
    logger.info("poller stopped")
