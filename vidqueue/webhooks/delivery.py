"""The delivery job: one attempt at POSTing a job's status to its callback URL.

It runs on the `webhooks` RQ queue (`vidqueue worker --queue webhooks`), so
that no delivery waits behind a video. One attempt:

1. resolves the URL's host, refuses private, local and metadata addresses
   (`vidqueue.webhooks.addresses`) and connects to the address it checked;
2. POSTs the body stored with the delivery, signed afresh
   (`vidqueue.webhooks.signing`), with a short timeout and without following
   redirects, and reads at most a few KiB of the answer;
3. writes the attempt to the job's delivery log and logs it: the job, the
   attempt, the outcome, the HTTP status and the latency; of the URL only
   its scheme and host.

A 2xx answer delivers. A timeout, a connection error, 408, 429 or a 5xx
answer is retried: the job returns RQ's `Retry` with the intervals of
`VIDQUEUE_WEBHOOK_RETRY_SECONDS` (about a day in all), which the worker's
scheduler honours. Any other answer, a refused URL, and the failure of the
last attempt end the delivery as failed. An attempt that ends without an
outcome (past its time limit, as a receiver that answers a byte at a time
makes it, or with its worker killed) is recorded by RQ's failure callback,
which schedules the next attempt itself.
"""

from __future__ import annotations

import json
import logging
import math
import time
from dataclasses import asdict, dataclass, field
from datetime import timedelta

import httpx
from redis import Redis
from rq import Callback, Queue, Retry
from rq.job import Job

from vidqueue import __version__, defaults
from vidqueue.context import Context
from vidqueue.errors import CallbackRefused
from vidqueue.records import utcnow
from vidqueue.settings import Settings
from vidqueue.webhooks.addresses import Target, redact, resolve_target
from vidqueue.webhooks.signing import signature_header

logger = logging.getLogger("vidqueue.webhooks")

RETRYABLE_STATUSES = frozenset({408, 429})
"""4xx answers that mean "later", retried like 5xx; any other 4xx is final."""
FAILURE_CALLBACK = "vidqueue.webhooks.delivery.on_failure"


@dataclass
class Attempt:
    """One attempt at one delivery, as the job's delivery log keeps it."""

    delivery: str
    job_id: str
    event: str
    attempt: int
    target: str
    """The URL's scheme and host, never its path or query."""
    at: str = field(default_factory=utcnow)
    outcome: str = ""
    """`delivered`, `retrying`, `failed` or `refused`."""
    status: int | None = None
    """The receiver's HTTP status; None when none answered."""
    error: str = ""
    latency_ms: int = 0


def webhook_queue(redis: Redis) -> Queue:
    """The `webhooks` queue on this Redis."""
    return Queue(defaults.WEBHOOK_QUEUE_NAME, connection=redis)


def enqueue_attempt(
    redis: Redis,
    settings: Settings,
    delivery_id: str,
    description: str,
    attempt: int = 1,
    pipeline=None,
) -> None:
    """Put an attempt at the delivery on the `webhooks` queue.

    The first attempt runs as soon as a worker is free (on `pipeline` when
    given); a later one, which only RQ's failure callback enqueues, after the
    retry interval that follows the attempt before it.
    """
    options = {
        "job_id": delivery_id if attempt == 1 else f"{delivery_id}-{attempt}",
        # RQ logs the description: the job and the event, never the URL.
        "description": description,
        "job_timeout": math.ceil(
            settings.webhook_timeout_seconds * defaults.WEBHOOK_JOB_TIMEOUT_FACTOR
        ),
        "result_ttl": defaults.WEBHOOK_DELIVERY_TTL_SECONDS,
        "failure_ttl": defaults.WEBHOOK_DELIVERY_TTL_SECONDS,
        "on_failure": Callback(FAILURE_CALLBACK),
    }
    queue = webhook_queue(redis)
    if attempt == 1:
        queue.enqueue(
            defaults.WEBHOOK_FUNCTION, delivery_id, pipeline=pipeline, **options
        )
        return
    delay = timedelta(seconds=settings.webhook_retry_intervals[attempt - 2])
    queue.enqueue_in(delay, defaults.WEBHOOK_FUNCTION, delivery_id, **options)


def deliver(delivery_id: str) -> Retry | str:
    """RQ job: make one attempt at a delivery; `Retry` while another is due.

    Otherwise returns the outcome (RQ keeps and logs return values, so they
    carry no URL).
    """
    ctx = Context.from_env()
    try:
        return _deliver(ctx, delivery_id)
    finally:
        ctx.redis.close()


def _deliver(ctx: Context, delivery_id: str) -> Retry | str:
    delivery = _load(ctx.redis, delivery_id)
    if delivery is None:
        return "expired"
    key = defaults.WEBHOOK_DELIVERY_KEY_TEMPLATE.format(delivery_id=delivery_id)
    attempt = _attempt_of(delivery_id, delivery, ctx.redis.hincrby(key, "attempts", 1))
    retryable = attempt_delivery(ctx.settings, delivery, attempt)
    intervals = ctx.settings.webhook_retry_intervals
    if retryable:
        attempt.outcome = "retrying" if attempt.attempt <= len(intervals) else "failed"
    record_attempt(ctx.redis, attempt)
    if attempt.outcome == "retrying":
        return Retry(max=len(intervals), interval=list(intervals))
    return attempt.outcome


def on_failure(job: Job, connection: Redis, exc_type, exc_value, traceback) -> None:
    """RQ's failure callback: an attempt that ended without an outcome.

    RQ calls it when an attempt outlived its time limit, when its worker died
    (AbandonedJobError), or after an error of vidqueue's own. The attempt is
    recorded, and the next one scheduled while attempts remain.
    """
    delivery_id = job.args[0]
    delivery = _load(connection, delivery_id)
    if delivery is None:
        return
    settings = Settings.from_env()
    attempt = _attempt_of(delivery_id, delivery, int(delivery["attempts"]))
    name = exc_type.__name__ if exc_type else "error"
    attempt.error = f"the attempt was stopped: {name}"
    attempt.outcome = "failed"
    if attempt.attempt <= len(settings.webhook_retry_intervals):
        attempt.outcome = "retrying"
        enqueue_attempt(
            connection, settings, delivery_id, job.description, attempt.attempt + 1
        )
    record_attempt(connection, attempt)


def attempt_delivery(
    settings: Settings, delivery: dict[str, str], attempt: Attempt
) -> bool:
    """POST the delivery once, filling in `attempt`; True if it may be retried.

    Sets `attempt.outcome` for the final outcomes (`delivered`, `failed`,
    `refused`) and leaves it empty for one that may pass.
    """
    if not settings.webhook_secret:
        # Never send unsigned: this worker lacks the settings the others have.
        attempt.error = "VIDQUEUE_WEBHOOK_SECRET is not set for this worker"
        return True
    body = delivery["body"].encode()
    started = time.monotonic()
    try:
        target = resolve_target(delivery["url"], settings.webhook_allowed_hosts)
        headers = _headers(settings.webhook_secret, attempt, body)
        attempt.status = _post(target, body, headers, settings.webhook_timeout_seconds)
    except CallbackRefused as exc:
        attempt.outcome, attempt.error = "refused", str(exc)
        return False
    except httpx.InvalidURL:
        attempt.outcome, attempt.error = "refused", "not a URL that can be sent to"
        return False
    except httpx.TimeoutException:
        attempt.error = "timed out"
    except (httpx.TransportError, OSError) as exc:
        # OSError: the host's name did not resolve. Neither names the URL.
        attempt.error = f"cannot connect: {type(exc).__name__}: {exc}"
    finally:
        attempt.latency_ms = round((time.monotonic() - started) * 1000)
    if attempt.status is None:
        return True
    if 200 <= attempt.status < 300:
        attempt.outcome = "delivered"
        return False
    if attempt.status >= 500 or attempt.status in RETRYABLE_STATUSES:
        return True
    attempt.outcome = "failed"
    return False


def record_attempt(redis: Redis, attempt: Attempt) -> None:
    """Add the attempt to the job's delivery log, and log it."""
    key = defaults.WEBHOOK_ATTEMPTS_KEY_TEMPLATE.format(job_id=attempt.job_id)
    with redis.pipeline(transaction=True) as pipe:
        pipe.rpush(key, json.dumps(asdict(attempt)))
        pipe.ltrim(key, -defaults.WEBHOOK_ATTEMPTS_KEPT, -1)
        pipe.expire(key, defaults.RECORD_TTL_SECONDS)
        pipe.execute()
    level = {"delivered": logging.INFO, "retrying": logging.WARNING}
    answer = f"HTTP {attempt.status}" if attempt.status else attempt.error
    logger.log(
        level.get(attempt.outcome, logging.ERROR),
        "job %s: webhook %s to %s, attempt %d: %s (%s, %d ms; delivery %s)",
        attempt.job_id, attempt.event, attempt.target, attempt.attempt,
        attempt.outcome, answer, attempt.latency_ms, attempt.delivery,
    )  # fmt: skip


def attempts_of(redis: Redis, job_id: str) -> list[dict]:
    """The job's delivery attempts, oldest first (the last `WEBHOOK_ATTEMPTS_KEPT`)."""
    key = defaults.WEBHOOK_ATTEMPTS_KEY_TEMPLATE.format(job_id=job_id)
    return [json.loads(raw) for raw in redis.lrange(key, 0, -1)]


def _load(redis: Redis, delivery_id: str) -> dict[str, str] | None:
    key = defaults.WEBHOOK_DELIVERY_KEY_TEMPLATE.format(delivery_id=delivery_id)
    delivery = {k.decode(): v.decode() for k, v in redis.hgetall(key).items()}
    if delivery:
        return delivery
    logger.warning("webhook delivery %s: expired before it was made", delivery_id)
    return None


def _attempt_of(delivery_id: str, delivery: dict[str, str], number: int) -> Attempt:
    return Attempt(
        delivery=delivery_id,
        job_id=delivery["job_id"],
        event=delivery["event"],
        attempt=number,
        target=redact(delivery["url"]),
    )


def _headers(secret: str, attempt: Attempt, body: bytes) -> dict[str, str]:
    return {
        "Content-Type": "application/json",
        "User-Agent": f"vidqueue/{__version__}",
        defaults.WEBHOOK_DELIVERY_HEADER: attempt.delivery,
        defaults.WEBHOOK_EVENT_HEADER: attempt.event,
        defaults.WEBHOOK_SIGNATURE_HEADER: signature_header(
            secret, body, int(time.time())
        ),
    }


def _post(
    target: Target, body: bytes, headers: dict[str, str], timeout_s: float
) -> int:
    """POST to the host's checked addresses in turn, until one connects.

    Returns the answer's status, after reading a little of its body.
    """
    # trust_env=False: a proxy from the environment would connect elsewhere.
    with httpx.Client(
        timeout=timeout_s, follow_redirects=False, trust_env=False
    ) as client:
        *others, last = target.addresses
        for address in others:
            try:
                return _post_to(client, target, address, body, headers)
            except httpx.ConnectError:
                continue  # refused or unreachable: the host's next address
        return _post_to(client, target, last, body, headers)


def _post_to(
    client: httpx.Client,
    target: Target,
    address: str,
    body: bytes,
    headers: dict[str, str],
) -> int:
    request = client.build_request(
        "POST",
        target.connect_url(address),
        content=body,
        headers={**headers, "Host": target.host_header},
        # TLS checks the certificate against the URL's own host name.
        extensions={"sni_hostname": target.host} if target.is_https else {},
    )
    response = client.send(request, stream=True)
    try:
        _read_at_most(response, defaults.WEBHOOK_RESPONSE_LIMIT_BYTES)
    finally:
        response.close()
    return response.status_code


def _read_at_most(response: httpx.Response, limit_bytes: int) -> None:
    read = 0
    for chunk in response.iter_raw():
        read += len(chunk)
        if read >= limit_bytes:
            return
