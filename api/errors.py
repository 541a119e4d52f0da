"""Errors become HTTP responses here, and only here."""

from __future__ import annotations

import logging

from litestar import Request, Response
from litestar.exceptions import HTTPException, ValidationException
from litestar.status_codes import (
    HTTP_500_INTERNAL_SERVER_ERROR,
    HTTP_503_SERVICE_UNAVAILABLE,
)
from redis.exceptions import ConnectionError as RedisConnectionError
from redis.exceptions import RedisError
from redis.exceptions import TimeoutError as RedisTimeoutError

from vidqueue.errors import VidqueueError

logger = logging.getLogger("vidqueue.api")

_HTTP_CODES = {
    400: "invalid_request",
    401: "unauthorized",
    403: "forbidden",
    404: "not_found",
    405: "method_not_allowed",
    413: "too_large",
    415: "unsupported_media_type",
    429: "rate_limited",
}


def _body(code: str, detail: str) -> dict[str, str]:
    return {"error": code, "detail": detail}


def vidqueue_error(request: Request, exc: VidqueueError) -> Response:
    """A vidqueue error: its own code, status and message."""
    if exc.status_code >= 500:
        logger.warning("%s %s: %s", request.method, request.url.path, exc)
    headers = getattr(exc, "headers", None)
    return Response(
        _body(exc.code, str(exc)), status_code=exc.status_code, headers=headers
    )


def validation_error(request: Request, exc: ValidationException) -> Response:
    """A body or parameter that does not fit the schema."""
    detail = exc.detail or "the request does not fit the API"
    extra = exc.extra if isinstance(exc.extra, list) else []
    messages = [
        f"{item.get('key') or 'body'}: {item.get('message')}"
        for item in extra
        if isinstance(item, dict) and item.get("message")
    ]
    if messages:
        detail = "; ".join(messages)
    return Response(_body("invalid_request", detail), status_code=400)


def http_error(request: Request, exc: HTTPException) -> Response:
    """Litestar's own errors (404 route, 405, 413 body...) in our shape."""
    code = _HTTP_CODES.get(exc.status_code, "error")
    return Response(
        _body(code, exc.detail), status_code=exc.status_code, headers=exc.headers
    )


def redis_unavailable(request: Request, exc: RedisError) -> Response:
    """Redis, where jobs live, cannot be reached: try again shortly."""
    logger.warning(
        "%s %s: Redis unavailable: %s",
        request.method, request.url.path, type(exc).__name__,
    )  # fmt: skip
    return Response(
        _body("unavailable", "the job store cannot be reached; try again shortly"),
        status_code=HTTP_503_SERVICE_UNAVAILABLE,
        headers={"Retry-After": "5"},
    )


def too_deep(request: Request, exc: RecursionError) -> Response:
    """A JSON body nested too deeply to decode: the client's mistake, not a bug."""
    if "deserializing" not in str(exc):  # msgspec's words; anything else is a bug
        return unexpected_error(request, exc)
    return Response(
        _body("invalid_request", "the JSON body is nested too deeply"),
        status_code=400,
    )


def unexpected_error(request: Request, exc: Exception) -> Response:
    """A bug: logged with its traceback, answered without one."""
    logger.exception("%s %s: unexpected error", request.method, request.url.path)
    return Response(
        _body("internal", "an unexpected error occurred; it has been logged"),
        status_code=HTTP_500_INTERNAL_SERVER_ERROR,
    )


EXCEPTION_HANDLERS = {
    VidqueueError: vidqueue_error,
    ValidationException: validation_error,
    HTTPException: http_error,
    RedisConnectionError: redis_unavailable,
    RedisTimeoutError: redis_unavailable,
    RecursionError: too_deep,
    Exception: unexpected_error,
}
