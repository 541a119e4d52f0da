"""`POST /hooks/storage`: S3 event notifications pushed by storage."""

from __future__ import annotations

import hmac
from collections import Counter

from litestar import Request, post
from litestar.params import JSONBody

from api.deps import ContextDep
from handlers.trigger import handle
from vidqueue.errors import InvalidRequest, Unauthorized

HOOK_BODY_LIMIT_BYTES = 4 * 1024 * 1024


@post(
    "/hooks/storage",
    status_code=200,
    sync_to_thread=True,
    exclude_from_auth=True,
    request_max_body_size=HOOK_BODY_LIMIT_BYTES,
    tags=["hooks"],
)
def storage_hook(
    request: Request, ctx: ContextDep, data: JSONBody[dict]
) -> dict[str, int]:
    """Take `{"Records": [...]}` as MinIO's webhook, AWS or Storj's Pub/Sub push
    send it; answers how many records ended in each outcome.

    Requires `Authorization: Bearer $VIDQUEUE_HOOK_SECRET`; without a secret
    configured the hook is closed.
    """
    _check_secret(request, ctx.settings.hook_secret)
    if not isinstance(data.get("Records"), list):
        raise InvalidRequest('the body must be an S3 event: {"Records": [...]}')
    outcomes = Counter(outcome.value for outcome in handle(data, ctx))
    return dict(outcomes)


def _check_secret(request: Request, secret: str | None) -> None:
    if not secret:
        raise Unauthorized("the storage hook is closed: VIDQUEUE_HOOK_SECRET is unset")
    scheme, _, given = request.headers.get("authorization", "").partition(" ")
    if scheme.lower() != "bearer" or not hmac.compare_digest(
        given.strip().encode(), secret.encode()
    ):
        raise Unauthorized("missing or wrong hook secret")
