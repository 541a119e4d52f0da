"""Who is calling: the local user, the owner of an API key, or a Supabase user.

`VIDQUEUE_AUTH_MODE` picks one of three:

- `none`: every caller is the local user. Only for an API bound to loopback;
  the app refuses to start otherwise.
- `apikey`: `Authorization: Bearer <key>` with a key from `VIDQUEUE_API_KEYS`
  (`user:key` pairs). Keys are compared in constant time, as SHA-256 digests,
  against every configured key.
- `jwt`: `Authorization: Bearer <token>` with a Supabase access token: HS256
  signed with `VIDQUEUE_JWT_SECRET`, or RS256/ES256 signed by a key published
  at `VIDQUEUE_JWKS_URL` (a token naming an unknown key id refetches the key
  set, at most every `JWKS_REFRESH_COOLDOWN_SECONDS`, so rotated keys work).
  The audience must be `authenticated`, the expiry is checked, and the user
  is the token's `sub`.

With auth on, every route needs credentials except the schema, the storage
hook (which checks its own secret), and routes marked `exclude_from_auth=True`
(health, readiness, metrics). Browsers cannot set headers on an EventSource,
so `GET /events/{jobId}` also takes the token as `?access_token=`.
Neither keys nor tokens are ever logged.
"""

from __future__ import annotations

import hashlib
import hmac
import ipaddress
import logging
from typing import Protocol

import jwt
from anyio import to_thread
from litestar import Request
from litestar.connection import ASGIConnection
from litestar.middleware import (
    AbstractAuthenticationMiddleware,
    AuthenticationResult,
    DefineMiddleware,
)

from api.deps import ContextDep
from vidqueue import defaults
from vidqueue.errors import AuthUnavailable, ConfigError, Unauthorized
from vidqueue.settings import Settings

logger = logging.getLogger("vidqueue.api.auth")

INVALID_TOKEN = 'Bearer realm="vidqueue", error="invalid_token"'  # noqa: S105
MIN_API_KEY_CHARS = 16
QUERY_TOKEN_PREFIXES = ("/events/",)
"""Paths that may carry the token in `?access_token=` (EventSource has no headers)."""


class Authenticator(Protocol):
    """Turns the bearer credential of a request into a user id."""

    blocking: bool
    """True when `user_for` may wait on the network (run it in a thread)."""

    def user_for(self, credential: str) -> str:
        """The user the credential belongs to, or `Unauthorized`."""
        ...


class ApiKeys:
    """Users identified by static API keys (`VIDQUEUE_API_KEYS`)."""

    blocking = False

    def __init__(self, pairs: str | None):
        self._entries: list[tuple[str, bytes]] = []
        for pair in (pairs or "").split(","):
            if not pair.strip():
                continue
            user, _, key = pair.strip().partition(":")
            if not user or len(key) < MIN_API_KEY_CHARS:
                raise ConfigError(
                    "VIDQUEUE_API_KEYS must be user:key pairs, separated by commas, "
                    f"with keys of at least {MIN_API_KEY_CHARS} characters"
                )
            self._entries.append((user, _digest(key)))
        if not self._entries:
            raise ConfigError("VIDQUEUE_AUTH_MODE=apikey needs VIDQUEUE_API_KEYS")
        if len({digest for _, digest in self._entries}) != len(self._entries):
            raise ConfigError("VIDQUEUE_API_KEYS gives the same key to two users")

    def user_for(self, credential: str) -> str:
        """The owner of the key; every key is compared, so timing tells nothing."""
        given = _digest(credential)
        owner = None
        for user, expected in self._entries:
            if hmac.compare_digest(given, expected):
                owner = user
        if owner is None:
            raise Unauthorized("the API key is not valid", INVALID_TOKEN)
        return owner


class SupabaseTokens:
    """Users identified by Supabase access tokens (JWTs)."""

    def __init__(self, secret: str | None, jwks_url: str | None):
        if not secret and not jwks_url:
            raise ConfigError(
                "VIDQUEUE_AUTH_MODE=jwt needs VIDQUEUE_JWT_SECRET or VIDQUEUE_JWKS_URL"
            )
        self.secret = secret
        self.jwks = None
        if jwks_url:
            self.jwks = jwt.PyJWKClient(
                jwks_url,
                cache_jwk_set=True,
                lifespan=defaults.JWKS_CACHE_SECONDS,
                cooldown_duration=defaults.JWKS_REFRESH_COOLDOWN_SECONDS,
                timeout=5,
            )
        # Key-set lookups may fetch over the network; HS256 checks never do.
        self.blocking = self.jwks is not None

    def user_for(self, credential: str) -> str:
        """The token's `sub`, once its signature, audience and expiry hold."""
        key, algorithm = self._key_for(credential)
        try:
            claims = jwt.decode(
                credential,
                key,
                algorithms=[algorithm],
                audience=defaults.JWT_AUDIENCE,
                leeway=defaults.JWT_LEEWAY_SECONDS,
                options={"require": ["exp", "sub", "aud"]},
            )
        except jwt.ExpiredSignatureError:
            raise Unauthorized("the token has expired", INVALID_TOKEN) from None
        except jwt.InvalidAudienceError:
            raise Unauthorized("the token is not for this API", INVALID_TOKEN) from None
        except jwt.InvalidTokenError:
            raise Unauthorized("the token is not valid", INVALID_TOKEN) from None
        subject = claims.get("sub")
        if not isinstance(subject, str) or not subject:
            raise Unauthorized("the token names no user", INVALID_TOKEN)
        return subject

    def _key_for(self, credential: str) -> tuple[object, str]:
        try:
            header = jwt.get_unverified_header(credential)
        except jwt.InvalidTokenError:
            raise Unauthorized("the token is not a JWT", INVALID_TOKEN) from None
        algorithm = header.get("alg")
        if algorithm == "HS256" and self.secret:
            return self.secret, algorithm
        if algorithm in defaults.JWT_ASYMMETRIC_ALGORITHMS and self.jwks:
            return self._published_key(header.get("kid")), algorithm
        raise Unauthorized("the token's algorithm is not accepted", INVALID_TOKEN)

    def _published_key(self, kid: object) -> object:
        if not isinstance(kid, str) or not kid:
            raise Unauthorized("the token names no signing key", INVALID_TOKEN)
        try:
            return self.jwks.get_signing_key(kid).key
        except jwt.PyJWKClientConnectionError as exc:
            logger.warning("cannot fetch the JWKS: %s", type(exc).__name__)
            raise AuthUnavailable(
                "the token's signing keys cannot be fetched"
            ) from None
        except jwt.PyJWKClientError:
            raise Unauthorized(
                "the token's signing key is unknown", INVALID_TOKEN
            ) from None


class AuthMiddleware(AbstractAuthenticationMiddleware):
    """Puts the caller's user id in the scope, or answers 401."""

    def __init__(self, app, authenticator: Authenticator, **kwargs):
        super().__init__(app, **kwargs)
        self.authenticator = authenticator

    async def authenticate_request(
        self, connection: ASGIConnection
    ) -> AuthenticationResult:
        """Check the bearer credential of one request."""
        credential = bearer_credential(connection)
        if self.authenticator.blocking:
            user = await to_thread.run_sync(self.authenticator.user_for, credential)
        else:
            user = self.authenticator.user_for(credential)
        return AuthenticationResult(user=user, auth=None)


def bearer_credential(connection: ASGIConnection) -> str:
    """The credential of `Authorization: Bearer ...` (or `?access_token=` on SSE)."""
    header = connection.headers.get("authorization", "")
    scheme, _, credential = header.strip().partition(" ")
    if scheme.lower() == "bearer" and credential.strip():
        return credential.strip()
    if header:
        raise Unauthorized("send credentials as Authorization: Bearer <token>")
    if connection.scope["path"].startswith(QUERY_TOKEN_PREFIXES):
        token = connection.query_params.get("access_token")
        if token:
            return token
    raise Unauthorized("this API needs credentials: Authorization: Bearer <token>")


def auth_middleware(settings: Settings) -> list[DefineMiddleware]:
    """The middleware for the configured auth mode (none when auth is off).

    Raises `ConfigError` when the mode's settings are missing or unsafe.
    """
    if settings.auth_mode == "none":
        _require_loopback(settings.api_host)
        return []
    authenticator: Authenticator
    if settings.auth_mode == "apikey":
        authenticator = ApiKeys(settings.api_keys)
    else:
        authenticator = SupabaseTokens(settings.jwt_secret, settings.jwks_url)
    return [
        DefineMiddleware(
            AuthMiddleware,
            authenticator=authenticator,
            exclude=list(defaults.OPEN_PATHS),
        )
    ]


def current_user(request: Request, ctx: ContextDep) -> str:
    """The id of the user making `request`."""
    if ctx.settings.auth_mode == "none":
        return defaults.DEFAULT_USER
    user = request.scope.get("user")
    if not user:
        # A route excluded from auth asked who is calling: refuse, never guess.
        raise Unauthorized("this API needs credentials: Authorization: Bearer <token>")
    return user


def _require_loopback(host: str) -> None:
    try:
        loopback = ipaddress.ip_address(host).is_loopback
    except ValueError:
        loopback = host == "localhost"
    if not loopback:
        raise ConfigError(
            f"VIDQUEUE_AUTH_MODE=none serves everyone as one user; bind "
            f"VIDQUEUE_API_HOST to loopback, not {host!r}, or use apikey or jwt"
        )


def _digest(text: str) -> bytes:
    return hashlib.sha256(text.encode()).digest()
