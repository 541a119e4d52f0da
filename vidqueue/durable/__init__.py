"""The durable job record: every job also lives in the database's `videos` table.

Redis holds the live record; the database keeps every job for good, so that
status survives the loss of Redis, browsers read their own jobs straight from
Supabase (row-level security), and operators query history. The path of a
change:

    RecordStore (Lua script) --XADD--> outbox stream --pump--> StatusSink
                                                               (Postgres / REST)

- `sink`: the `StatusSink` interface, its two transports and the row format;
- `outbox`: the stream's format and the pump that writes it, throttled;
- `reconcile`: rebuilds in Redis the unfinished jobs that Redis lost.

The poller process runs the pump and the reconcile (`start_background`).
"""

from __future__ import annotations

import logging
import threading
from typing import TYPE_CHECKING

from redis.exceptions import RedisError

from vidqueue import defaults
from vidqueue.durable.sink import StatusSink, durable_configured, open_sink
from vidqueue.errors import DatabaseUnavailable

if TYPE_CHECKING:
    from vidqueue.context import Context

__all__ = ["StatusSink", "durable_configured", "open_sink", "start_background"]

logger = logging.getLogger("vidqueue.durable")


def start_background(ctx: Context, stop: threading.Event) -> list[threading.Thread]:
    """Start the outbox pump and the periodic reconcile as daemon threads.

    Returns the threads (none when no database is configured); they end soon
    after `stop` is set.
    """
    if ctx.durable is None:
        return []
    from vidqueue.durable.outbox import OutboxPump

    pump = OutboxPump(ctx.redis, ctx.durable)
    threads = [
        threading.Thread(
            target=pump.run, args=(stop,), name="outbox-pump", daemon=True
        ),
        threading.Thread(
            target=keep_reconciling, args=(ctx, stop), name="reconcile", daemon=True
        ),
    ]
    for thread in threads:
        thread.start()
    return threads


def keep_reconciling(
    ctx: Context,
    stop: threading.Event,
    interval_s: float = defaults.RECONCILE_INTERVAL_SECONDS,
) -> None:
    """Reconcile now, then every `interval_s`, until `stop` is set.

    While the database (or Redis) is down, tries again sooner (every
    `OUTBOX_RETRY_MAX_SECONDS` at most) so that a start during an outage
    still reconciles once the database is back.
    """
    from vidqueue.durable.reconcile import reconcile

    while not stop.is_set():
        wait_s = interval_s
        try:
            restored = reconcile(ctx)
        except (DatabaseUnavailable, RedisError) as exc:
            logger.warning("reconcile failed, will try again: %s", exc)
            wait_s = min(interval_s, defaults.OUTBOX_RETRY_MAX_SECONDS)
        else:
            if restored:
                logger.info("reconcile: rebuilt %d jobs", len(restored))
        stop.wait(wait_s)
