"""The connections that the API, the trigger and the worker share."""

from __future__ import annotations

import logging
from functools import cached_property
from urllib.parse import unquote, urlsplit

from redis import Redis
from redis.sentinel import Sentinel

from vidqueue.durable import StatusSink, durable_configured, open_sink
from vidqueue.errors import ConfigError
from vidqueue.profiles import Profiles
from vidqueue.queue import video_queue
from vidqueue.records import RecordStore
from vidqueue.settings import Settings
from vidqueue.storage import Storage

logger = logging.getLogger("vidqueue.context")

LOCAL_REDIS_URL = "redis://127.0.0.1:6379/0"


def connect_redis(url: str) -> Redis:
    """A Redis client for `url`, which may name a Sentinel-watched primary.

    `redis://`, `rediss://` and `unix://` URLs connect directly. With
    `redis+sentinel://[:password@]host:port[,host:port...]/service[/db]`, the
    client asks the Sentinels which server is the primary of `service` and
    asks again after a failover, so workers and the API follow the primary
    without a proxy in between.
    """
    parts = urlsplit(url)
    if parts.scheme != "redis+sentinel":
        return Redis.from_url(url, health_check_interval=30)
    path = [p for p in parts.path.split("/") if p]
    if not path:
        raise ConfigError("a redis+sentinel:// URL names the service: .../mymaster")
    nodes = []
    for node in parts.netloc.rpartition("@")[2].split(","):
        host, _, port = node.rpartition(":")
        nodes.append((host or node, int(port or 26379)))
    sentinel = Sentinel(
        nodes, socket_timeout=5, sentinel_kwargs={"password": parts.password}
    )
    db = int(path[1]) if len(path) > 1 else 0
    return sentinel.master_for(
        unquote(path[0]), password=parts.password, db=db, health_check_interval=30
    )


def outbox_consumed(settings: Settings) -> bool:
    """True when something reads the outbox: the database's pump, or webhooks.

    Every process writing job records (API, poller, worker) must decide the
    same, from the same settings, so this is the one place that decides.
    """
    return durable_configured(settings) or settings.webhooks_enabled


class Context:
    """Redis, the record store, the queue and storage for one process.

    Connections open on first use, so building a context costs nothing.
    """

    def __init__(self, settings: Settings):
        self.settings = settings

    @classmethod
    def from_env(cls) -> Context:
        """A context on the settings of the environment."""
        return cls(Settings.from_env())

    @cached_property
    def redis(self) -> Redis:
        """The Redis holding the queue and the job records."""
        return connect_redis(self.settings.redis_url or LOCAL_REDIS_URL)

    @cached_property
    def records(self) -> RecordStore:
        """Job records in Redis, feeding the outbox when something consumes it."""
        return RecordStore(self.redis, outbox=outbox_consumed(self.settings))

    @cached_property
    def durable(self) -> StatusSink | None:
        """The durable record in the database, or None when none is configured."""
        return open_sink(self.settings)

    @cached_property
    def queue(self):
        """The RQ queue of video jobs."""
        return video_queue(self.redis)

    @cached_property
    def profiles(self) -> Profiles:
        """The encoding profiles on offer (built in, plus the profiles file)."""
        return Profiles.load(self.settings.profiles_file)

    @cached_property
    def storage(self) -> Storage:
        """The upload and output buckets."""
        return Storage(self.settings)
