"""The outbox: every change of a job record, queued in Redis for the database.

Format of the stream (`vidqueue:outbox`, `defaults.OUTBOX_KEY`), for every
consumer of it:

- One entry per change of a job record, and one per new record, appended by
  `RecordStore` in the same atomic step as the change itself, so the stream
  holds every change in the order it happened, and nothing else.
- An entry's fields are the whole record after the change, exactly as in the
  job's hash: field names of `JobRecord`, values as strings, `result` as JSON
  text, empty strings for unset values (`JobRecord.from_redis` reads one).
  `id` names the job; `version` grows by one with each change of that job,
  so of two entries of one job the higher version is the newer.
- The stream is written only while something consumes it: `RecordStore`
  appends when built with `outbox=True`, which `Context` does when a
  database or webhooks are configured (`vidqueue.context.outbox_consumed`).
- Every consumer reads with a consumer group of its own, created at id `0` so
  that it also sees what was written before it first ran (`OutboxReader`).
  The pumps here use the group `durable-record`, the webhook dispatchers
  (`vidqueue.webhooks.dispatch`) the group `webhooks`. After acknowledging,
  a consumer trims the entries that every group has acknowledged (XTRIM
  MINID), never more; a group that stops reading keeps the stream growing,
  so destroy groups that are gone.

The pump reads a batch, keeps only the newest entry of each job (this is what
throttles progress: a busy job's many progress changes become one row write
per batch), upserts those records, then acknowledges the batch. While the
database is down the entries stay, and the pump retries with a growing pause;
when the database returns it catches up and nothing is lost. Several pumps
(one per poller) share the group; entries that a pump read and never
acknowledged (it died) are claimed by another after `claim_idle_s`.
"""

from __future__ import annotations

import logging
import os
import secrets
import socket
import threading
import time
from collections.abc import Sequence

from redis import Redis
from redis.exceptions import RedisError, ResponseError

from vidqueue import defaults
from vidqueue.durable.sink import StatusSink
from vidqueue.errors import DatabaseUnavailable, RecordRejected
from vidqueue.records import JobRecord

logger = logging.getLogger("vidqueue.outbox")

Entry = tuple[bytes, dict[bytes, bytes] | None]


def read_record(
    entry_id: bytes, entry_fields: dict[bytes, bytes] | None
) -> JobRecord | None:
    """The job record an entry holds, or None.

    Entries without fields (deleted from the stream meanwhile) give None, and
    so do entries that are not a job record, which are logged.
    """
    if not entry_fields:
        return None
    try:
        record = JobRecord.from_redis(entry_fields)
    except (ValueError, TypeError) as exc:
        logger.error(
            "outbox entry %s is not a job record, skipped: %s", _text(entry_id), exc
        )
        return None
    if not record.id:
        logger.error("outbox entry %s names no job, skipped", _text(entry_id))
        return None
    return record


def coalesce(entries: Sequence[Entry]) -> dict[str, JobRecord]:
    """The newest record of each job among `entries` (highest version wins).

    Entries that hold no job record are skipped (see `read_record`).
    """
    newest: dict[str, JobRecord] = {}
    for entry_id, entry_fields in entries:
        record = read_record(entry_id, entry_fields)
        if record is None:
            continue
        known = newest.get(record.id)
        if known is None or record.version >= known.version:
            newest[record.id] = record
    return newest


class OutboxReader:
    """One consumer of the outbox, reading with a consumer group of its own.

    `_read` returns what this consumer read before and did not acknowledge,
    else what a stopped consumer of the same group left unacknowledged for
    `claim_idle_s`, else new entries; `_acknowledge` also trims the entries
    that every group is done with. Subclasses decide what entries mean.

    Args:
        redis: the Redis holding the outbox.
        group: the consumer group, one per kind of consumer.
        consumer: this consumer's name in the group (unique per process).
        batch_entries: most entries read at once.
        claim_idle_s: entries another consumer left unacknowledged this long
            are taken over.
    """

    def __init__(
        self,
        redis: Redis,
        group: str,
        consumer: str | None = None,
        batch_entries: int = defaults.OUTBOX_BATCH_ENTRIES,
        claim_idle_s: float = defaults.OUTBOX_CLAIM_IDLE_SECONDS,
    ):
        self.redis = redis
        self.key = defaults.OUTBOX_KEY
        self.group = group
        self.consumer = consumer or (
            f"{socket.gethostname()}.{os.getpid()}.{secrets.token_hex(2)}"
        )
        self.batch_entries = batch_entries
        self.claim_idle_s = claim_idle_s
        self._group_ready = False
        self._last_tidy = 0.0

    def backlog(self) -> int:
        """Entries this group has not acknowledged yet (read or not)."""
        self._ensure_group()
        waiting = self.redis.xpending(self.key, self.group)["pending"]
        for group in self.redis.xinfo_groups(self.key):
            if _text(group["name"]) == self.group:
                waiting += group.get("lag") or 0
        return int(waiting)

    def _ensure_group(self) -> None:
        if self._group_ready:
            return
        try:
            self.redis.xgroup_create(self.key, self.group, id="0", mkstream=True)
        except ResponseError as exc:
            if "BUSYGROUP" not in str(exc):
                raise
        self._group_ready = True

    def _read(self, block_s: float) -> list[Entry]:
        # First what this consumer read before and did not finish, then what
        # a stopped consumer of the group left behind, then new entries.
        mine = self._read_group("0", block_s=0)
        if mine:
            return mine
        claimed = self._claim()
        if claimed:
            return claimed
        return self._read_group(">", block_s=block_s)

    def _read_group(self, start: str, block_s: float) -> list[Entry]:
        block_ms = int(block_s * 1000) or None  # 0 would mean "forever"
        try:
            answer = self.redis.xreadgroup(
                self.group,
                self.consumer,
                {self.key: start},
                count=self.batch_entries,
                block=block_ms,
            )
        except ResponseError as exc:
            if "NOGROUP" not in str(exc):
                raise
            # Redis lost the stream (flushed, restarted empty): start again.
            self._group_ready = False
            self._ensure_group()
            return []
        return list(answer[0][1]) if answer else []

    def _claim(self) -> list[Entry]:
        now = time.monotonic()
        if now - self._last_tidy < self.claim_idle_s / 2:
            return []
        self._last_tidy = now
        self._forget_idle_consumers()
        _cursor, claimed, *_deleted = self.redis.xautoclaim(
            self.key,
            self.group,
            self.consumer,
            min_idle_time=int(self.claim_idle_s * 1000),
            count=self.batch_entries,
        )
        if claimed:
            logger.info(
                "outbox %s %s: took over %d changes of a stopped consumer",
                self.group, self.consumer, len(claimed),
            )  # fmt: skip
        return list(claimed)

    def _forget_idle_consumers(self) -> None:
        forget_ms = defaults.OUTBOX_FORGET_CONSUMER_SECONDS * 1000
        for consumer in self.redis.xinfo_consumers(self.key, self.group):
            name = _text(consumer["name"])
            if name == self.consumer or consumer["pending"]:
                continue
            if consumer["idle"] > forget_ms:
                self.redis.xgroup_delconsumer(self.key, self.group, name)

    def _acknowledge(self, entry_ids: list[bytes]) -> None:
        self.redis.xack(self.key, self.group, *entry_ids)
        floor = self._oldest_needed()
        if floor is not None:
            self.redis.xtrim(self.key, minid=floor, approximate=False)

    def _oldest_needed(self) -> str | None:
        """The oldest entry id that some group has not acknowledged yet."""
        oldest: tuple[int, int] | None = None
        for group in self.redis.xinfo_groups(self.key):
            needed = _next_id(_text(group["last-delivered-id"]))
            if group["pending"]:
                summary = self.redis.xpending(self.key, _text(group["name"]))
                # None: the group acknowledged them all since XINFO answered.
                if summary["min"] is not None:
                    needed = min(needed, _parse_id(_text(summary["min"])))
            oldest = needed if oldest is None else min(oldest, needed)
        return None if oldest is None else f"{oldest[0]}-{oldest[1]}"


class OutboxPump(OutboxReader):
    """Writes the outbox to the database, one coalesced batch at a time.

    Args:
        redis: the Redis holding the outbox.
        sink: the database to write to.
        consumer: this pump's name in the group (unique per pump).
        batch_entries: most entries read and written at once.
        interval_s: least time between two writes, so that the changes of a
            busy job in between become one row write.
        retry_max_s: longest pause between attempts while the database is down.
        claim_idle_s: entries another pump left unacknowledged this long are
            taken over.
    """

    def __init__(
        self,
        redis: Redis,
        sink: StatusSink,
        consumer: str | None = None,
        batch_entries: int = defaults.OUTBOX_BATCH_ENTRIES,
        interval_s: float = defaults.OUTBOX_FLUSH_INTERVAL_SECONDS,
        retry_max_s: float = defaults.OUTBOX_RETRY_MAX_SECONDS,
        claim_idle_s: float = defaults.OUTBOX_CLAIM_IDLE_SECONDS,
    ):
        super().__init__(
            redis, defaults.OUTBOX_GROUP, consumer, batch_entries, claim_idle_s
        )
        self.sink = sink
        self.interval_s = interval_s
        self.retry_max_s = retry_max_s
        self.writes = 0
        """Upserts sent so far (one per batch)."""
        self.rows = 0
        """Records written so far (after coalescing)."""

    def run(self, stop: threading.Event) -> None:
        """Pump until `stop` is set, pausing longer while the database is down."""
        logger.info(
            "outbox pump %s started: to %s, at most every %.1f s",
            self.consumer, self.sink.name, self.interval_s,
        )  # fmt: skip
        pause_s = 0.0
        while not stop.is_set():
            try:
                done = self.pump_once(block_s=self.interval_s)
            except Exception as exc:
                # Whatever went wrong, the entries wait in the outbox: pause,
                # longer each time, and try again rather than end the pump.
                pause_s = min(max(pause_s * 2, 1.0), self.retry_max_s)
                self._report(exc, pause_s)
                stop.wait(pause_s)
                continue
            if pause_s:
                logger.info("outbox pump %s: writing again", self.consumer)
                pause_s = 0.0
            if 0 < done < self.batch_entries:
                stop.wait(self.interval_s)
        logger.info("outbox pump %s stopped", self.consumer)

    def pump_once(self, block_s: float = 0.0) -> int:
        """Read one batch, write its newest records, acknowledge it.

        Waits up to `block_s` for new entries when there are none. Returns how
        many entries were done (0: the outbox had nothing for this pump).
        Raises `DatabaseUnavailable` with the batch left in the outbox.
        """
        self._ensure_group()
        entries = self._read(block_s)
        if not entries:
            return 0
        newest = coalesce(entries)
        self._write(list(newest.values()))
        self._acknowledge([entry_id for entry_id, _ in entries])
        logger.debug(
            "outbox pump %s: %d changes of %d jobs written",
            self.consumer, len(entries), len(newest),
        )  # fmt: skip
        return len(entries)

    def drain(self) -> int:
        """Pump until the outbox has nothing left for this pump; returns entries.

        Raises `DatabaseUnavailable` when the database is down.
        """
        total = 0
        while done := self.pump_once():
            total += done
        return total

    def _write(self, records: list[JobRecord]) -> None:
        try:
            self.sink.upsert(records)
            self.writes += 1
            self.rows += len(records)
            return
        except RecordRejected:
            if len(records) == 1:
                self._drop(records[0])
                return
        # One record the database refuses must not hold back the others.
        for record in records:
            self._write([record])

    def _drop(self, record: JobRecord) -> None:
        logger.error(
            "job %s: the database refuses version %d of its record; it is "
            "skipped (outbox pump %s)",
            record.id, record.version, self.consumer,
        )  # fmt: skip

    def _report(self, exc: Exception, pause_s: float) -> None:
        if isinstance(exc, (DatabaseUnavailable, RedisError)):
            logger.warning(
                "outbox pump %s: cannot write, %s changes wait; again in %.1f s: %s",
                self.consumer, self._backlog_text(), pause_s, exc,
            )  # fmt: skip
            return
        logger.error(
            "outbox pump %s: unexpected error; again in %.1f s",
            self.consumer, pause_s, exc_info=exc,
        )  # fmt: skip

    def _backlog_text(self) -> str:
        try:
            return str(self.backlog())
        except RedisError:
            return "some"


def _parse_id(entry_id: str) -> tuple[int, int]:
    ms, _, seq = entry_id.partition("-")
    return int(ms), int(seq or 0)


def _next_id(entry_id: str) -> tuple[int, int]:
    ms, seq = _parse_id(entry_id)
    return ms, seq + 1


def _text(value: bytes | str) -> str:
    return value.decode() if isinstance(value, bytes) else value
