"""The inbox: objects that other tools drop under `inbox/` become jobs.

Files put with uplink, rclone or `aws s3 cp` carry no job; the inbox gives
each object version (key and ETag) exactly one. Objects stay where they are
and the job reads them in place.

What was seen lives in one Redis hash, `key -> "etag|last seen"`. A listing
touches every object it finds, then sweeps the entries it did not touch, so
the hash holds at most the objects now in the inbox, whatever the order in
which storage lists them (Storj lists encrypted keys out of order). An object
overwritten with new content has a new ETag and becomes a new job.
"""

from __future__ import annotations

import logging
import mimetypes
import time

from handlers.trigger import Outcome, accept_upload
from vidqueue import defaults
from vidqueue.context import Context
from vidqueue.errors import StorageError
from vidqueue.keys import INBOX_PREFIX, safe_name
from vidqueue.records import JobRecord, new_job_id
from vidqueue.storage import ObjectInfo

logger = logging.getLogger("vidqueue.inbox")

# KEYS: seen hash. ARGV: object key, etag, now. Returns 1 for a new version.
_SEEN_SCRIPT = """
local current = redis.call('HGET', KEYS[1], ARGV[1])
redis.call('HSET', KEYS[1], ARGV[1], ARGV[2] .. '|' .. ARGV[3])
if current then
  local sep = string.find(current, '|', 1, true)
  if sep and string.sub(current, 1, sep - 1) == ARGV[2] then return 0 end
end
return 1
"""


def inbox_object(ctx: Context, key: str, info: ObjectInfo) -> Outcome:
    """Make a job of an inbox object, once per version (key and ETag)."""
    if key.endswith("/") or (info.size == 0 and not info.etag):
        return Outcome.IGNORED
    seen = ctx.redis.register_script(_SEEN_SCRIPT)
    is_new = seen(keys=[defaults.INBOX_SEEN_KEY], args=[key, info.etag, time.time()])
    if not is_new:
        return Outcome.DUPLICATE

    job_id = new_job_id()
    filename = key.rsplit("/", 1)[-1] or "video"
    record = JobRecord(
        id=job_id,
        user_id=ctx.settings.inbox_user,
        source_bucket=ctx.storage.upload_bucket,
        source_key=key,
        filename=safe_name(filename),
        content_type=mimetypes.guess_type(filename)[0] or "application/octet-stream",
        size_bytes=info.size,
    )
    ctx.records.create(record)
    logger.info("job %s: created for inbox object %r", job_id, key[:200])
    return accept_upload(ctx, record, info)


def scan_inbox(ctx: Context) -> dict[Outcome, int]:
    """List the inbox once, make jobs of new objects, forget vanished ones."""
    started = time.time()
    tally = dict.fromkeys(Outcome, 0)
    try:
        for found in ctx.storage.list_objects(ctx.storage.upload_bucket, INBOX_PREFIX):
            key, info = found
            tally[inbox_object(ctx, key, info)] += 1
    except StorageError as exc:
        logger.warning("inbox listing failed, will try again: %s", exc)
        return tally
    _sweep(ctx, before=started)
    return tally


def _sweep(ctx: Context, before: float) -> None:
    stale = []
    for key, value in ctx.redis.hscan_iter(defaults.INBOX_SEEN_KEY, count=500):
        _etag, _, seen_at = value.decode().rpartition("|")
        if float(seen_at or 0) < before:
            stale.append(key)
    if stale:
        ctx.redis.hdel(defaults.INBOX_SEEN_KEY, *stale)
