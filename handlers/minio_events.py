"""MinIO's listen API: bucket events streamed to the trigger as they happen.

MinIO (not AWS, not Storj) streams S3 event records as JSON lines on a long
GET. The listener hands each to `handlers.trigger.handle` and, when the
stream breaks, listens again after a backoff that doubles up to
`EVENT_RECONNECT_MAX_SECONDS`. Events missed while disconnected are not lost:
the poller HEADs every pending upload anyway.
"""

from __future__ import annotations

import logging
import threading
from urllib.parse import urlsplit

from minio import Minio

from handlers.trigger import handle
from vidqueue import defaults
from vidqueue.context import Context
from vidqueue.errors import ConfigError

logger = logging.getLogger("vidqueue.events")

EVENTS = ("s3:ObjectCreated:*",)


def minio_client(ctx: Context) -> Minio:
    """A MinIO client on the configured S3 endpoint."""
    settings = ctx.settings
    if not settings.s3_endpoint:
        raise ConfigError("VIDQUEUE_MINIO_LISTEN needs VIDQUEUE_S3_ENDPOINT")
    endpoint = urlsplit(settings.s3_endpoint)
    return Minio(
        endpoint.netloc,
        access_key=settings.s3_access_key,
        secret_key=settings.s3_secret_key,
        secure=endpoint.scheme == "https",
        region=settings.s3_region,
    )


def listen(ctx: Context, stop: threading.Event) -> None:
    """Hand every created-object event to the trigger until `stop` is set."""
    bucket = ctx.storage.upload_bucket
    backoff = 1.0
    while not stop.is_set():
        try:
            client = minio_client(ctx)
            with client.listen_bucket_notification(bucket, events=EVENTS) as events:
                logger.info("listening to events of bucket %s", bucket)
                for event in events:
                    handle(event, ctx)
                    backoff = 1.0
                    if stop.is_set():
                        return
        except ConfigError:
            raise
        except Exception as exc:
            logger.warning(
                "events of bucket %s lost (%s); listening again in %.0f s",
                bucket, type(exc).__name__, backoff,
            )  # fmt: skip
        stop.wait(backoff)
        backoff = min(backoff * 2, defaults.EVENT_RECONNECT_MAX_SECONDS)


def start_listener(ctx: Context, stop: threading.Event) -> threading.Thread:
    """Run `listen` in a daemon thread."""
    thread = threading.Thread(
        target=listen, args=(ctx, stop), name="minio-events", daemon=True
    )
    thread.start()
    return thread
