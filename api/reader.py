"""Status reads for many pollers: concurrent requests share Redis round trips.

`GET /status/{jobId}` is what every client polls. Each read needs the job's
record, its enqueue number, the enqueue total and the queue length (for the
position) and the count of waiting jobs (for uploads). Reading them request
by request costs a round trip each and, worse, redis-py's per-call work,
which is larger than the rest of the request.

`StatusReader` gathers the reads of the requests that arrive together: the
reads asked for during one turn of the event loop become one batch, read in
one round trip by one Lua call (the shared figures are read once), and
batches run side by side. Under light load a request costs one round trip,
as before; under heavy load batches grow and the cost per request falls.
Answers are never older than the round trip that carried them.

Jobs that Redis no longer holds go the usual way (`find_job`, which may read
the durable record).
"""

from __future__ import annotations

import asyncio
import json
from dataclasses import dataclass

from anyio import to_thread
from litestar import Litestar
from redis.asyncio import Redis as AsyncRedis

from api.jobs import (
    find_job,
    fresh_speed,
    measured_speed,
    shape_status,
    status_of,
)
from api.schemas import JobStatus
from vidqueue import defaults
from vidqueue.context import LOCAL_REDIS_URL, Context
from vidqueue.errors import JobNotFound
from vidqueue.positions import ahead_from
from vidqueue.records import JobRecord, looks_like_job_id

STATUS_FIELDS = (
    "id", "user_id", "state", "progress", "stage", "result", "failed_reason",
    "created_at", "updated_at", "filename",
)  # fmt: skip
"""The record fields a status shows (read with HMGET, not the whole hash)."""


@dataclass(frozen=True)
class _Snapshot:
    """What one round trip read about one job, and the figures it shares."""

    values: list[bytes | None]
    """`STATUS_FIELDS`, then the job's enqueue number."""
    total: bytes | None
    queue_length: int
    waiting: int

    def record(self) -> JobRecord | None:
        """The job's record, with the fields a status needs; None if Redis has none."""
        if self.values[0] is None:
            return None
        text = {
            name: value.decode() if value is not None else ""
            for name, value in zip(STATUS_FIELDS, self.values, strict=False)
        }
        text["progress"] = int(text["progress"] or 0)
        text["result"] = json.loads(text["result"]) if text["result"] else None
        return JobRecord(**text)


# KEYS: the job hashes, then the enqueue total, the queue and the state counts.
# ARGV: the fields to read from each hash. One call reads a whole batch.
_READ_SCRIPT = """
local jobs = #KEYS - 3
local out = {}
for i = 1, jobs do
  out[i] = redis.call('HMGET', KEYS[i], unpack(ARGV))
end
out[jobs + 1] = redis.call('GET', KEYS[jobs + 1])
out[jobs + 2] = redis.call('LLEN', KEYS[jobs + 2])
out[jobs + 3] = redis.call('HGET', KEYS[jobs + 3], 'waiting')
return out
"""


class StatusReader:
    """Reads job status for the requests of one event loop, in shared batches."""

    def __init__(self, ctx: Context):
        self.ctx = ctx
        self.redis = AsyncRedis.from_url(ctx.settings.redis_url or LOCAL_REDIS_URL)
        self.queue_key = ctx.queue.key
        self._read_script = self.redis.register_script(_READ_SCRIPT)
        self._pending: dict[str, list[asyncio.Future]] = {}
        self._batches: set[asyncio.Task] = set()

    async def close(self) -> None:
        """Close the connections."""
        await self.redis.aclose()

    async def status(self, user_id: str, job_id: str) -> JobStatus:
        """The caller's job as `GET /status` shows it, or `JobNotFound`."""
        if not looks_like_job_id(job_id):
            raise JobNotFound("no such job")
        snapshot = await self._snapshot(job_id)
        record = snapshot.record()
        if record is None:
            return await to_thread.run_sync(self._from_elsewhere, user_id, job_id)
        if record.user_id != user_id:
            raise JobNotFound(f"no job {job_id!r}")
        position = await self._position(record, snapshot)
        if position is None:
            return shape_status(record, None, None)
        speed = fresh_speed(self.ctx)
        if speed is None:
            speed = await to_thread.run_sync(measured_speed, self.ctx)
        return shape_status(record, position, speed.estimate(position))

    async def _position(self, record: JobRecord, snapshot: _Snapshot) -> int | None:
        if record.state == "uploading":
            return snapshot.waiting
        if record.state != "waiting":
            return None
        number = snapshot.values[-1]
        ahead = ahead_from(number, snapshot.total, snapshot.queue_length)
        if ahead is None:
            ahead = await self.redis.lpos(
                self.queue_key, record.id, maxlen=defaults.POSITION_SCAN_LIMIT
            )
        return ahead or 0

    def _from_elsewhere(self, user_id: str, job_id: str) -> JobStatus:
        return status_of(self.ctx, find_job(self.ctx, user_id, job_id))

    async def _snapshot(self, job_id: str) -> _Snapshot:
        loop = asyncio.get_running_loop()
        future = loop.create_future()
        if not self._pending:
            loop.call_soon(self._start_batch)
        self._pending.setdefault(job_id, []).append(future)
        return await future

    def _start_batch(self) -> None:
        """Read, in one round trip, for every request that asked since the last."""
        batch, self._pending = self._pending, {}
        task = asyncio.ensure_future(self._read_batch(batch))
        self._batches.add(task)
        task.add_done_callback(self._batches.discard)

    async def _read_batch(self, batch: dict[str, list[asyncio.Future]]) -> None:
        try:
            snapshots = await self._read(list(batch))
        except Exception as exc:
            for futures in batch.values():
                _settle(futures, exception=exc)
            return
        for job_id, futures in batch.items():
            _settle(futures, result=snapshots[job_id])

    async def _read(self, job_ids: list[str]) -> dict[str, _Snapshot]:
        keys = [defaults.job_key(job_id) for job_id in job_ids]
        keys += [defaults.ENQUEUED_TOTAL_KEY, self.queue_key, defaults.STATE_COUNT_KEY]
        replies = await self._read_script(
            keys=keys, args=[*STATUS_FIELDS, defaults.QUEUE_SEQ_FIELD]
        )
        total, length, waiting = replies[-3:]
        return {
            job_id: _Snapshot(
                values=replies[n],
                total=total,
                queue_length=int(length),
                waiting=max(int(waiting or 0), 0),
            )
            for n, job_id in enumerate(job_ids)
        }


def _settle(
    futures: list[asyncio.Future],
    result: _Snapshot | None = None,
    exception: Exception | None = None,
) -> None:
    for future in futures:
        if future.done():
            continue  # its request went away
        if exception is not None:
            future.set_exception(exception)
        else:
            future.set_result(result)


READER_STATE_KEY = "status_reader"
"""Where the app's state keeps its `ReaderSlot`."""


def reader_of(app: Litestar) -> StatusReader:
    """The status reader of a running app."""
    return app.state[READER_STATE_KEY].get()


class ReaderSlot:
    """The app's `StatusReader`: made at startup, in the server's event loop."""

    def __init__(self, ctx: Context):
        self.ctx = ctx
        self.reader: StatusReader | None = None

    async def open(self) -> None:
        """Startup hook."""
        self.reader = StatusReader(self.ctx)

    async def close(self) -> None:
        """Shutdown hook."""
        if self.reader is not None:
            await self.reader.close()
            self.reader = None

    def get(self) -> StatusReader:
        """The dependency handed to routes."""
        if self.reader is None:
            self.reader = StatusReader(self.ctx)
        return self.reader
