"""Credentials without a server: API keys, Supabase tokens, the bearer header."""

from __future__ import annotations

import time

import jwt
import pytest
from litestar.connection import ASGIConnection

from api.auth import ApiKeys, SupabaseTokens, auth_middleware, bearer_credential
from vidqueue.errors import ConfigError, Unauthorized
from vidqueue.settings import Settings

KEYS = "alice:alice-key-0123456789abcdef,bob:bob-key-0123456789abcdefgh"
SECRET = "a-jwt-secret-of-at-least-thirty-two-chars"


def connection(path: str = "/jobs", headers=(), query: str = "") -> ASGIConnection:
    scope = {
        "type": "http",
        "path": path,
        "query_string": query.encode(),
        "headers": [(k.lower().encode(), v.encode()) for k, v in headers],
    }
    return ASGIConnection(scope)


def test_each_key_belongs_to_its_user():
    keys = ApiKeys(KEYS)

    assert keys.user_for("alice-key-0123456789abcdef") == "alice"
    assert keys.user_for("bob-key-0123456789abcdefgh") == "bob"
    for wrong in ("", "alice", "alice-key-0123456789abcdeF", "x" * 1000):
        with pytest.raises(Unauthorized):
            keys.user_for(wrong)


@pytest.mark.parametrize(
    "pairs", [None, "", "alice", "alice:short", ":no-user-0123456789abcdef"]
)
def test_malformed_key_lists_are_refused(pairs):
    with pytest.raises(ConfigError):
        ApiKeys(pairs)


def test_the_token_subject_is_the_user():
    tokens = SupabaseTokens(SECRET, None)
    claims = {"sub": "u-1", "aud": "authenticated", "exp": int(time.time()) + 60}

    assert tokens.user_for(jwt.encode(claims, SECRET, "HS256")) == "u-1"


def test_expiry_allows_a_little_clock_skew_only():
    tokens = SupabaseTokens(SECRET, None)
    base = {"sub": "u-1", "aud": "authenticated"}
    just = jwt.encode({**base, "exp": int(time.time()) - 2}, SECRET, "HS256")
    long_ago = jwt.encode({**base, "exp": int(time.time()) - 120}, SECRET, "HS256")

    assert tokens.user_for(just) == "u-1"
    with pytest.raises(Unauthorized, match="expired"):
        tokens.user_for(long_ago)


def bearer(value: str) -> ASGIConnection:
    return connection(headers=[("Authorization", value)])


def test_bearer_header_is_required_and_parsed():
    assert bearer_credential(bearer("Bearer t1")) == "t1"
    assert bearer_credential(bearer("bearer  t2 ")) == "t2"
    for wrong in (connection(), bearer("Basic eDp5"), bearer("Bearer")):
        with pytest.raises(Unauthorized):
            bearer_credential(wrong)


def test_query_tokens_only_on_event_streams():
    events = connection(path="/events/J", query="access_token=t3")
    status = connection(path="/status/J", query="access_token=t3")

    assert bearer_credential(events) == "t3"
    with pytest.raises(Unauthorized):
        bearer_credential(status)


@pytest.mark.parametrize("host", ["127.0.0.1", "::1", "localhost"])
def test_no_auth_is_fine_on_loopback(host):
    assert auth_middleware(Settings(api_host=host)) == []


@pytest.mark.parametrize("host", ["0.0.0.0", "10.0.0.5", "example.com"])  # noqa: S104
def test_no_auth_refuses_other_addresses(host):
    with pytest.raises(ConfigError, match="loopback"):
        auth_middleware(Settings(api_host=host))
