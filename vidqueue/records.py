"""Job records in Redis, with state changes done atomically.

A record is a Redis hash. Every change goes through one Lua script that checks
the current state, writes the fields, keeps the per-state counts and the set of
pending uploads in step, bumps the record's `version` and announces the change,
so two processes asking for the same move (two pollers, a poller and the
client's complete call) cannot both make it.

With the outbox on, the same atomic step also appends the whole record, as it
is after the change, to the outbox stream (`vidqueue.durable.outbox` describes
its format), from which the durable record in the database is written.
"""

from __future__ import annotations

import json
import os
import time
from dataclasses import asdict, dataclass, field, fields
from datetime import UTC, datetime, timedelta
from typing import Any

from redis import Redis

from vidqueue import defaults

_CROCKFORD = "0123456789ABCDEFGHJKMNPQRSTVWXYZ"


def new_job_id(now_ms: int | None = None) -> str:
    """An unguessable, time-sortable id: 48 bits of milliseconds, 80 random bits.

    The same layout as a ULID, in Crockford base32 (26 characters).
    """
    ms = int(time.time() * 1000) if now_ms is None else now_ms
    value = (ms << 80) | int.from_bytes(os.urandom(10), "big")
    chars = []
    for _ in range(26):
        chars.append(_CROCKFORD[value & 31])
        value >>= 5
    return "".join(reversed(chars))


def looks_like_job_id(value: str) -> bool:
    """True when `value` has the shape of a job id (cheap check before Redis)."""
    return len(value) == 26 and all(c in _CROCKFORD for c in value)


def utc_iso(moment: datetime) -> str:
    """A moment as records store it: UTC, ISO 8601, milliseconds and a `Z`."""
    text = moment.astimezone(UTC).isoformat(timespec="milliseconds")
    return text.replace("+00:00", "Z")


def utcnow() -> str:
    """The current UTC time as records store it."""
    return utc_iso(datetime.now(UTC))


def upload_deadline(lifetime_s: float) -> str:
    """When an upload whose presigned requests live `lifetime_s` expires."""
    return utc_iso(datetime.now(UTC) + timedelta(seconds=lifetime_s))


@dataclass
class JobRecord:
    """One job, as stored in Redis and in the database (see DESIGN.md)."""

    id: str
    user_id: str
    state: str = "uploading"
    progress: int = 0
    stage: str = ""
    source_bucket: str = ""
    source_key: str = ""
    filename: str = ""
    content_type: str = ""
    size_bytes: int = 0
    profile: str = "default"
    result: dict[str, Any] | None = None
    failed_reason: str = ""
    attempts: int = 0
    version: int = 0
    created_at: str = field(default_factory=utcnow)
    updated_at: str = field(default_factory=utcnow)
    started_at: str = ""
    finished_at: str = ""
    upload_expires_at: str = ""
    callback_url: str = ""
    """Where this job's webhooks go, when it has a URL of its own. It may carry
    a token: never log it whole (`vidqueue.webhooks.addresses.redact`)."""

    @property
    def is_final(self) -> bool:
        """True once the job can change no more (except by an explicit retry)."""
        return self.state in defaults.FINAL_STATES

    def to_redis(self) -> dict[str, str]:
        """The record as a flat mapping of strings for HSET."""
        return {name: _encode(value) for name, value in asdict(self).items()}

    @classmethod
    def from_redis(cls, raw: dict[bytes | str, bytes | str]) -> JobRecord:
        """Rebuild a record from HGETALL's answer."""
        data = {_text(k): _text(v) for k, v in raw.items()}
        kwargs: dict[str, Any] = {}
        for f in fields(cls):
            if f.name not in data:
                continue
            value = data[f.name]
            if f.name in ("progress", "size_bytes", "attempts", "version"):
                kwargs[f.name] = int(value or 0)
            elif f.name == "result":
                kwargs[f.name] = json.loads(value) if value else None
            else:
                kwargs[f.name] = value
        return cls(**kwargs)


def _encode(value: Any) -> str:
    if value is None:
        return ""
    if isinstance(value, dict):
        return json.dumps(value, separators=(",", ":"))
    return str(value)


def _text(value: bytes | str) -> str:
    return value.decode() if isinstance(value, bytes) else value


# KEYS: job key, state counts, uploading set, channel[, outbox stream]
# ARGV: job id, allowed current states (comma-separated, empty: any non-final),
#       new state (empty: keep), record ttl seconds, then field/value pairs
_CHANGE_SCRIPT = """
local current = redis.call('HGET', KEYS[1], 'state')
if not current then return {0, ''} end
local allowed = ARGV[2]
if allowed == '' then
  if current == 'completed' or current == 'failed' or current == 'cancelled' then
    return {0, current}
  end
elseif not string.find(',' .. allowed .. ',', ',' .. current .. ',', 1, true) then
  return {0, current}
end
local new_state = ARGV[3]
if #ARGV > 4 then
  redis.call('HSET', KEYS[1], unpack(ARGV, 5))
end
redis.call('HINCRBY', KEYS[1], 'version', 1)
if new_state ~= '' and new_state ~= current then
  redis.call('HSET', KEYS[1], 'state', new_state)
  redis.call('HINCRBY', KEYS[2], current, -1)
  redis.call('HINCRBY', KEYS[2], new_state, 1)
  if current == 'uploading' then redis.call('ZREM', KEYS[3], ARGV[1]) end
  if new_state == 'completed' or new_state == 'failed' or new_state == 'cancelled' then
    redis.call('EXPIRE', KEYS[1], tonumber(ARGV[4]))
  else
    redis.call('PERSIST', KEYS[1])
  end
end
redis.call('PUBLISH', KEYS[4], new_state ~= '' and new_state or current)
if KEYS[5] then
  redis.call('XADD', KEYS[5], '*', unpack(redis.call('HGETALL', KEYS[1])))
end
return {1, current}
"""


class RecordStore:
    """Job records in one Redis database.

    With `outbox` on, every change (and every new record) also appends the
    record's new snapshot to the outbox stream, in the same atomic step; leave
    it off when nothing consumes the stream, so that it does not grow.
    """

    def __init__(self, redis: Redis, outbox: bool = False):
        self.redis = redis
        self.outbox_key = defaults.OUTBOX_KEY if outbox else None
        self._change = redis.register_script(_CHANGE_SCRIPT)

    def create(self, record: JobRecord) -> None:
        """Store a new record and count it in its state."""
        created = datetime.fromisoformat(record.created_at.replace("Z", "+00:00"))
        score = created.timestamp()
        with self.redis.pipeline(transaction=True) as pipe:
            pipe.hset(defaults.job_key(record.id), mapping=record.to_redis())
            pipe.hincrby(defaults.STATE_COUNT_KEY, record.state, 1)
            if record.state == "uploading":
                pipe.zadd(defaults.UPLOADING_KEY, {record.id: score})
            user_key = defaults.USER_JOBS_KEY_TEMPLATE.format(user_id=record.user_id)
            pipe.zadd(user_key, {record.id: score})
            if self.outbox_key:
                pipe.xadd(self.outbox_key, record.to_redis())
            pipe.execute()

    def get(self, job_id: str) -> JobRecord | None:
        """The record, or None when Redis has none."""
        raw = self.redis.hgetall(defaults.job_key(job_id))
        return JobRecord.from_redis(raw) if raw else None

    def transition(
        self, job_id: str, to_state: str, from_states: tuple[str, ...], **changes: Any
    ) -> bool:
        """Move a job to `to_state` if it is in one of `from_states`.

        Returns True for the one caller that made the move; False when the job
        was elsewhere (already moved, unknown, or in a final state).
        """
        return self._apply(job_id, to_state, from_states, changes)

    def update(
        self, job_id: str, only_in: tuple[str, ...] = (), **changes: Any
    ) -> bool:
        """Change fields without changing state.

        The write only happens while the job is in one of `only_in` (any state
        that is not final when empty), so a late progress report can never
        overwrite a finished job.
        """
        return self._apply(job_id, "", only_in, changes)

    def _apply(
        self,
        job_id: str,
        to_state: str,
        from_states: tuple[str, ...],
        changes: dict[str, Any],
    ) -> bool:
        changes.setdefault("updated_at", utcnow())
        pairs: list[str] = []
        for name, value in changes.items():
            pairs += [name, _encode(value)]
        keys = [
            defaults.job_key(job_id),
            defaults.STATE_COUNT_KEY,
            defaults.UPLOADING_KEY,
            defaults.CHANNEL_TEMPLATE.format(job_id=job_id),
        ]
        if self.outbox_key:
            keys.append(self.outbox_key)
        argv = [job_id, ",".join(from_states), to_state]
        argv += [defaults.RECORD_TTL_SECONDS, *pairs]
        done, _previous = self._change(keys=keys, args=argv)
        return bool(done)

    def state_of(self, job_id: str) -> str | None:
        """Only the job's state (one cheap read), or None for an unknown job."""
        state = self.redis.hget(defaults.job_key(job_id), "state")
        return _text(state) if state is not None else None

    def increment_attempts(self, job_id: str) -> int:
        """Count one more start of the job by a worker; returns the new count."""
        return int(self.redis.hincrby(defaults.job_key(job_id), "attempts", 1))

    def pending_uploads(self, limit: int = 1000) -> list[str]:
        """Ids of jobs still `uploading`, oldest first."""
        ids = self.redis.zrange(defaults.UPLOADING_KEY, 0, limit - 1)
        return [_text(job_id) for job_id in ids]

    def user_jobs(self, user_id: str, limit: int = 20) -> list[str]:
        """Ids of a user's most recent jobs, newest first."""
        key = defaults.USER_JOBS_KEY_TEMPLATE.format(user_id=user_id)
        return [_text(job_id) for job_id in self.redis.zrevrange(key, 0, limit - 1)]

    def counts(self) -> dict[str, int]:
        """How many jobs are in each state (final states count every job so far)."""
        raw = self.redis.hgetall(defaults.STATE_COUNT_KEY)
        counts = dict.fromkeys(defaults.STATES, 0)
        for state, count in raw.items():
            counts[_text(state)] = max(int(count), 0)
        return counts

    def record_throughput(self, video_s: float, elapsed_s: float) -> None:
        """Add one finished job to the running totals of processing speed."""
        with self.redis.pipeline(transaction=True) as pipe:
            pipe.hincrbyfloat(defaults.THROUGHPUT_KEY, "video_seconds", video_s)
            pipe.hincrbyfloat(defaults.THROUGHPUT_KEY, "elapsed_seconds", elapsed_s)
            pipe.hincrby(defaults.THROUGHPUT_KEY, "jobs", 1)
            pipe.execute()

    def throughput(self) -> dict[str, float]:
        """Totals so far: jobs, seconds of video and seconds spent processing."""
        raw = {
            _text(k): float(v)
            for k, v in self.redis.hgetall(defaults.THROUGHPUT_KEY).items()
        }
        return {
            "jobs": raw.get("jobs", 0.0),
            "video_seconds": raw.get("video_seconds", 0.0),
            "elapsed_seconds": raw.get("elapsed_seconds", 0.0),
        }
