"""Webhooks: vidqueue tells the application when a job has ended.

The path of one webhook:

    RecordStore --XADD--> outbox --dispatcher--> delivery (hash + RQ job
    "webhooks") --worker--> POST callback URL, signed; retried for a day

- `dispatch`: the dispatcher, a second consumer group (`webhooks`) on the
  outbox that the durable record also reads. A job that reached `completed`,
  `failed` or `cancelled` (and, with `VIDQUEUE_WEBHOOK_STAGES=on`, a job that
  changed state or stage) gets one delivery, guarded against replays;
- `delivery`: the RQ job that makes one attempt, and the job's delivery log;
- `signing`: the `Vidqueue-Signature` header;
- `addresses`: which URLs may be called, and the address checked for each.

A delivery carries the job's public status (`vidqueue.public`), the body of
`GET /status/{jobId}`, to the job's own `callbackUrl` or else to
`VIDQUEUE_WEBHOOK_URL`. The poller process runs the dispatcher
(`start_dispatcher`); `vidqueue worker --queue webhooks` runs deliveries, so
that none waits behind a video. `vidqueue webhooks JOB` lists a job's attempts
and `--redeliver` sends its webhook again.
"""

from __future__ import annotations

import threading
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from vidqueue.context import Context


def start_dispatcher(ctx: Context, stop: threading.Event) -> list[threading.Thread]:
    """Start the webhook dispatcher as a daemon thread, when webhooks are on.

    Returns the threads (none with webhooks off); they end soon after `stop`
    is set.
    """
    if not ctx.settings.webhooks_enabled:
        return []
    from vidqueue.webhooks.dispatch import Dispatcher

    thread = threading.Thread(
        target=Dispatcher(ctx).run, args=(stop,), name="webhooks", daemon=True
    )
    thread.start()
    return [thread]
