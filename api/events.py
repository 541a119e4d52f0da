"""`GET /events/{jobId}`: a job's status as server-sent events, until it ends.

Every change of a record is announced on the job's Redis channel
(`CHANNEL_TEMPLATE`). The stream subscribes first and reads the status
second, so no change can fall between the two; it then sends the status
again after each announcement that changed it, and a comment line every
`EVENTS_HEARTBEAT_SECONDS` so that proxies keep the connection open. The
stream ends after the event of a final state (`completed`, `failed`,
`cancelled`).

Each event is `event: status` with the same JSON as `GET /status/{jobId}`.
"""

from __future__ import annotations

import logging
import time
from collections.abc import AsyncIterator

import msgspec
from anyio import to_thread
from litestar import get
from litestar.response import ServerSentEvent, ServerSentEventMessage
from redis.asyncio import Redis as AsyncRedis

from api.deps import ContextDep, UserDep
from api.jobs import find_job, status_of
from api.schemas import JobStatus
from api.uploads import JobId
from vidqueue import defaults
from vidqueue.context import LOCAL_REDIS_URL, Context
from vidqueue.errors import JobNotFound

logger = logging.getLogger("vidqueue.api")


@get(
    "/events/{job_id:str}",
    tags=["status"],
    summary="Follow a job's status as server-sent events",
    media_type="text/event-stream",
)
async def job_events(ctx: ContextDep, user: UserDep, job_id: JobId) -> ServerSentEvent:
    """One `status` event now, one per change, and the end at a final state.

    Browsers' EventSource cannot send headers: with auth on, pass the token as
    `?access_token=`.
    """
    record = await to_thread.run_sync(find_job, ctx, user, job_id)
    return ServerSentEvent(_status_events(ctx, user, record.id))


async def _status_events(
    ctx: Context, user: str, job_id: str
) -> AsyncIterator[ServerSentEventMessage]:
    redis = AsyncRedis.from_url(ctx.settings.redis_url or LOCAL_REDIS_URL)
    pubsub = redis.pubsub()
    try:
        await pubsub.subscribe(defaults.CHANNEL_TEMPLATE.format(job_id=job_id))
        sent = ""
        last_write = time.monotonic()
        while True:
            status = await to_thread.run_sync(_status_or_none, ctx, user, job_id)
            if status is None:
                return
            body = msgspec.json.encode(status).decode()
            if body != sent:
                yield ServerSentEventMessage(data=body, event="status")
                sent, last_write = body, time.monotonic()
            if status.state in defaults.FINAL_STATES:
                return

            wait_s = defaults.EVENTS_HEARTBEAT_SECONDS - (time.monotonic() - last_write)
            message = await pubsub.get_message(
                ignore_subscribe_messages=True, timeout=max(wait_s, 0.0)
            )
            if message is None:
                yield ServerSentEventMessage(data=None, comment="keep-alive")
                last_write = time.monotonic()
    finally:
        await pubsub.aclose()
        await redis.aclose()
        logger.debug("job %s: event stream closed", job_id)


def _status_or_none(ctx: Context, user: str, job_id: str) -> JobStatus | None:
    try:
        return status_of(ctx, find_job(ctx, user, job_id))
    except JobNotFound:
        return None
