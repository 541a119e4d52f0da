"""The dispatcher: changes of job records, read from the outbox, become deliveries.

It reads the outbox (the format is in `vidqueue.durable.outbox`) as the
consumer group `webhooks`. A job that reached a final state gets one
delivery of event `job.completed`, `job.failed` or `job.cancelled`; with
`VIDQUEUE_WEBHOOK_STAGES=on`, every new state or stage of a running job gets
one of event `job.updated`. A delivery is a hash holding the body (the job's
public status at that change) and the URL, plus one RQ job on the `webhooks`
queue that `vidqueue.webhooks.delivery` runs.

One delivery per event, however often an entry is read (a claim after a
crash, two dispatchers): each event first takes a key with SET NX, named by
the job, its state and the moment it got there (`finished_at`). The key is a
lease of seconds until the delivery is enqueued, and is kept for days after;
a dispatcher that dies in between leaves the event to whichever dispatcher
takes its entries over, once the lease has run out.
"""

from __future__ import annotations

import json
import logging
import threading

from vidqueue import defaults
from vidqueue.context import Context
from vidqueue.durable.outbox import OutboxReader, read_record
from vidqueue.errors import ConfigError, InvalidRequest, JobNotFound
from vidqueue.public import public_status
from vidqueue.records import JobRecord, new_job_id, utcnow
from vidqueue.webhooks.addresses import redact
from vidqueue.webhooks.delivery import enqueue_attempt

logger = logging.getLogger("vidqueue.webhooks")


def event_of(record: JobRecord) -> str:
    """The event a webhook about this record announces."""
    return f"job.{record.state}" if record.is_final else "job.updated"


def event_mark(record: JobRecord, stages: bool) -> str | None:
    """What makes this change an event of its own, or None when it is none.

    A final state is one event per time the job got there; with `stages`, so
    is each state and stage of each attempt of a running job.
    """
    if record.is_final:
        return f"{record.state}:{record.finished_at or record.updated_at}"
    if not stages or record.state == "uploading":
        return None
    return f"{record.state}:{record.stage}:{record.attempts}"


def callback_url_of(ctx: Context, record: JobRecord) -> str:
    """Where the job's webhooks go: its own URL, else the global one ("": none)."""
    return record.callback_url or ctx.settings.webhook_url or ""


def schedule_delivery(ctx: Context, record: JobRecord, event: str) -> str | None:
    """Enqueue one delivery of the record's public status; returns its id.

    None when there is nowhere to send it (no callback URL of the job's own
    and no `VIDQUEUE_WEBHOOK_URL`).
    """
    url = callback_url_of(ctx, record)
    if not url:
        return None
    delivery_id = new_job_id()
    key = defaults.WEBHOOK_DELIVERY_KEY_TEMPLATE.format(delivery_id=delivery_id)
    delivery = {
        "job_id": record.id,
        "event": event,
        "url": url,
        "body": json.dumps(public_status(record), separators=(",", ":")),
        "attempts": 0,
        "created_at": utcnow(),
    }
    description = f"webhook {event} of job {record.id}"
    with ctx.redis.pipeline() as pipe:
        pipe.multi()  # before the first command, as RQ's enqueue expects
        pipe.hset(key, mapping=delivery)
        pipe.expire(key, defaults.WEBHOOK_DELIVERY_TTL_SECONDS)
        enqueue_attempt(
            ctx.redis, ctx.settings, delivery_id, description, pipeline=pipe
        )
        pipe.execute()
    logger.info(
        "job %s: webhook %s queued for %s (delivery %s)",
        record.id, event, redact(url), delivery_id,
    )  # fmt: skip
    return delivery_id


def redeliver(ctx: Context, job_id: str) -> str:
    """Send the job's webhook again: a new delivery of its current status.

    Raises `JobNotFound` for an unknown job, `ConfigError` with webhooks off
    and `InvalidRequest` when the job has nowhere to send to.
    """
    if not ctx.settings.webhooks_enabled:
        raise ConfigError("webhooks are off: set VIDQUEUE_WEBHOOK_URL first")
    record = ctx.records.get(job_id)
    if record is None and ctx.durable is not None:
        record = ctx.durable.fetch(job_id)
    if record is None:
        raise JobNotFound(f"no job {job_id!r}")
    delivery_id = schedule_delivery(ctx, record, event_of(record))
    if delivery_id is None:
        raise InvalidRequest(
            f"job {job_id} has no callback URL and VIDQUEUE_WEBHOOK_URL is not set"
        )
    return delivery_id


class Dispatcher(OutboxReader):
    """Reads the outbox as the group `webhooks` and schedules deliveries.

    Several dispatchers (one per poller) share the group; each event becomes
    one delivery whichever of them reads it.
    """

    def __init__(self, ctx: Context, consumer: str | None = None):
        super().__init__(ctx.redis, defaults.WEBHOOK_GROUP, consumer)
        self.ctx = ctx
        self.stages = ctx.settings.webhook_stages == "on"

    def run(self, stop: threading.Event) -> None:
        """Dispatch until `stop` is set, pausing longer while something fails."""
        logger.info("webhook dispatcher %s started", self.consumer)
        pause_s = 0.0
        while not stop.is_set():
            try:
                self.dispatch_once(block_s=defaults.WEBHOOK_DISPATCH_BLOCK_SECONDS)
            except Exception:
                # The entries stay in the outbox: pause and read them again.
                pause_s = min(max(pause_s * 2, 1.0), defaults.OUTBOX_RETRY_MAX_SECONDS)
                logger.warning(
                    "webhook dispatcher %s failed; again in %.1f s",
                    self.consumer, pause_s, exc_info=True,
                )  # fmt: skip
                stop.wait(pause_s)
                continue
            pause_s = 0.0
        logger.info("webhook dispatcher %s stopped", self.consumer)

    def dispatch_once(self, block_s: float = 0.0) -> int:
        """Read one batch, schedule its deliveries, acknowledge it.

        Waits up to `block_s` for new entries when there are none. Returns how
        many entries were read (0: nothing new).
        """
        self._ensure_group()
        entries = self._read(block_s)
        if not entries:
            return 0
        for entry_id, entry_fields in entries:
            record = read_record(entry_id, entry_fields)
            if record is not None:
                self.dispatch(record)
        self._acknowledge([entry_id for entry_id, _ in entries])
        return len(entries)

    def dispatch(self, record: JobRecord) -> str | None:
        """Schedule the delivery this change calls for, unless one was already.

        Returns the delivery's id, or None when the change needs none.
        """
        mark = event_mark(record, self.stages)
        if mark is None or not callback_url_of(self.ctx, record):
            return None
        guard = defaults.WEBHOOK_SENT_KEY_TEMPLATE.format(job_id=record.id, mark=mark)
        lease_s = defaults.WEBHOOK_SENT_LEASE_SECONDS
        if not self.redis.set(guard, self.consumer, nx=True, ex=lease_s):
            return None
        try:
            delivery_id = schedule_delivery(self.ctx, record, event_of(record))
        except BaseException:
            self.redis.delete(guard)
            raise
        self.redis.expire(guard, defaults.WEBHOOK_SENT_TTL_SECONDS)
        return delivery_id
