"""Liveness, readiness and metrics: the routes that monitoring calls.

They need no user credentials. `/metrics` tells job counts and speeds, not
whose jobs they are; it is open by default, which suits the default API bound
to loopback. An API on a public address should either keep `/metrics` away
from the internet at its proxy, or set `VIDQUEUE_METRICS_TOKEN`, which
Prometheus then sends as a bearer token (`authorization` in its scrape config).
"""

from __future__ import annotations

import hmac
import logging
from collections.abc import Callable

import anyio
from litestar import Controller, Request, Response, get
from litestar.openapi.datastructures import ResponseSpec
from prometheus_client import CONTENT_TYPE_LATEST

from api.auth import bearer_credential
from api.deps import ContextDep
from api.metrics import render
from api.schemas import ReadyAnswer
from vidqueue import defaults
from vidqueue.errors import Unauthorized

logger = logging.getLogger("vidqueue.api")


class HealthController(Controller):
    """`GET /healthz`, `GET /readyz` and `GET /metrics`."""

    tags = ("health",)

    @get("/healthz", sync_to_thread=False, exclude_from_auth=True)
    def healthz(self) -> dict[str, str]:
        """Liveness: the process answers."""
        return {"status": "ok"}

    @get(
        "/readyz",
        exclude_from_auth=True,
        responses={
            503: ResponseSpec(data_container=ReadyAnswer, description="not ready")
        },
    )
    async def readyz(self, ctx: ContextDep) -> Response[ReadyAnswer]:
        """Readiness: Redis answers, the upload bucket exists, the database answers.

        503 when any of them fails; `checks` says which. The database is
        `not configured` when the system keeps no durable record.
        """
        durable = getattr(ctx, "durable", None)
        probes: dict[str, Callable[[], object] | None] = {
            "redis": ctx.redis.ping,
            "storage": ctx.storage.check,
            "database": _probe_of(durable),
        }
        checks: dict[str, str] = {}
        async with anyio.create_task_group() as group:
            for name, probe in probes.items():
                group.start_soon(_run_check, name, probe, checks)
        ready = all(result in ("ok", "not configured") for result in checks.values())
        answer = ReadyAnswer(status="ok" if ready else "unavailable", checks=checks)
        return Response(answer, status_code=200 if ready else 503)

    @get(
        "/metrics",
        sync_to_thread=True,
        exclude_from_auth=True,
        media_type=CONTENT_TYPE_LATEST,
    )
    def metrics(self, request: Request, ctx: ContextDep) -> bytes:
        """Prometheus metrics (bearer `VIDQUEUE_METRICS_TOKEN` when one is set)."""
        expected = ctx.settings.metrics_token
        if expected:
            given = bearer_credential(request)
            if not hmac.compare_digest(given.encode(), expected.encode()):
                raise Unauthorized("the metrics token is not valid")
        return render(ctx)


def _probe_of(durable: object) -> Callable[[], object] | None:
    """A call that fails when the durable record's database does not answer."""
    if durable is None:
        return None
    # Reading a job that cannot exist takes one round trip and changes nothing.
    return getattr(durable, "check", None) or (lambda: durable.fetch("0" * 26))


async def _run_check(
    name: str, probe: Callable[[], object] | None, checks: dict[str, str]
) -> None:
    if probe is None:
        checks[name] = "not configured"
        return
    try:
        with anyio.fail_after(defaults.READY_CHECK_TIMEOUT_SECONDS):
            await anyio.to_thread.run_sync(probe, abandon_on_cancel=True)
    except TimeoutError:
        checks[name] = "timed out"
    except Exception as exc:
        # The class name only: messages of drivers may carry addresses or users.
        checks[name] = f"failed: {type(exc).__name__}"
    else:
        checks[name] = "ok"
    if checks[name] != "ok":
        logger.warning("readiness: %s %s", name, checks[name])
