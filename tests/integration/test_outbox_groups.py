"""Consumer groups of one outbox acknowledging at the same moment."""

from __future__ import annotations

from collections.abc import Callable

import pytest
from redis import Redis

from vidqueue import defaults
from vidqueue.durable.outbox import OutboxReader
from vidqueue.records import JobRecord, RecordStore, new_job_id

pytestmark = pytest.mark.integration


class Consumer(OutboxReader):
    """A reader that takes what it is given and acknowledges it at once."""

    def take(self) -> list[bytes]:
        ids = [entry_id for entry_id, _ in self._read(block_s=0)]
        self._acknowledge(ids)
        return ids


class OthersActInBetween(Redis):
    """A client after whose XINFO GROUPS another consumer acts, once."""

    then: Callable[[], object] | None = None

    def xinfo_groups(self, name):
        groups = super().xinfo_groups(name)
        if self.then is not None:
            self.then, action = None, self.then
            action()
        return groups


def test_another_group_acknowledging_meanwhile_does_not_stop_the_trim(ctx):
    racing = OthersActInBetween.from_url(ctx.settings.redis_url)
    mine = Consumer(racing, "mine")
    other = Consumer(ctx.redis, "other")
    mine._ensure_group()
    other._ensure_group()
    records = RecordStore(ctx.redis, outbox=True)
    for _ in range(2):
        records.create(JobRecord(id=new_job_id(), user_id="u1"))
    pending = [entry_id for entry_id, _ in other._read(block_s=0)]
    # The other group still holds its entries when this one looks, and has
    # acknowledged them all when it asks which is the oldest.
    racing.then = lambda: ctx.redis.xack(defaults.OUTBOX_KEY, "other", *pending)

    assert len(mine.take()) == 2

    assert ctx.redis.xlen(defaults.OUTBOX_KEY) == 0
    racing.close()
