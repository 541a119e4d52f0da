"""Authentication: API keys, Supabase JWTs (secret and JWKS), and who sees what."""

from __future__ import annotations

import hashlib
import hmac
import json
import threading
import time
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import httpx
import jwt
import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec, rsa
from litestar.testing import TestClient

from api.app import create_app
from tests.live import serve
from tests.sse import status_events
from vidqueue import defaults
from vidqueue.context import Context
from vidqueue.errors import ConfigError

pytestmark = pytest.mark.integration

ALICE_KEY = "alice-key-0123456789abcdef"
BOB_KEY = "bob-key-0123456789abcdefgh"
SECRET = "super-secret-jwt-token-with-at-least-32-characters"
UPLOAD = {"filename": "a.mp4", "contentType": "video/mp4", "size": 1000}


def bearer(credential: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {credential}"}


def token(key=SECRET, algorithm="HS256", kid=None, **claims) -> str:
    """A Supabase-style access token; claims given as None are left out."""
    now = int(time.time())
    body = {"sub": "user-1", "aud": "authenticated", "exp": now + 600, "iat": now}
    body.update(claims)
    body = {name: value for name, value in body.items() if value is not None}
    headers = {"kid": kid} if kid else None
    return jwt.encode(body, key, algorithm=algorithm, headers=headers)


@pytest.fixture
def keyed(make_api) -> TestClient:
    return make_api(auth_mode="apikey", api_keys=f"alice:{ALICE_KEY},bob:{BOB_KEY}")


def test_api_key_mode_refuses_missing_and_wrong_keys(keyed):
    missing = keyed.post("/uploads", json=UPLOAD)
    wrong = keyed.post("/uploads", json=UPLOAD, headers=bearer(ALICE_KEY + "x"))
    basic = keyed.post("/uploads", json=UPLOAD, headers={"Authorization": "Basic eDp5"})

    for answer in (missing, wrong, basic):
        assert answer.status_code == 401
        assert answer.json()["error"] == "unauthorized"
        assert answer.json()["detail"]
        assert answer.headers["WWW-Authenticate"].startswith("Bearer")
    assert 'error="invalid_token"' in wrong.headers["WWW-Authenticate"]
    assert ALICE_KEY not in wrong.text


def test_api_key_owner_gets_jobs_under_own_prefix(keyed):
    answer = keyed.post("/uploads", json=UPLOAD, headers=bearer(ALICE_KEY))

    assert answer.status_code == 201, answer.text
    assert answer.json()["key"].startswith(f"u/alice/{answer.json()['jobId']}/")


def test_other_users_jobs_answer_404(keyed):
    job_id = keyed.post("/uploads", json=UPLOAD, headers=bearer(ALICE_KEY)).json()[
        "jobId"
    ]
    bob = bearer(BOB_KEY)

    assert keyed.get(f"/status/{job_id}", headers=bearer(ALICE_KEY)).status_code == 200
    assert keyed.get(f"/status/{job_id}", headers=bob).status_code == 404
    assert keyed.post(f"/uploads/{job_id}/complete", headers=bob).status_code == 404
    assert keyed.get(f"/events/{job_id}", headers=bob).status_code == 404
    assert keyed.delete(f"/jobs/{job_id}", headers=bob).status_code == 404
    assert keyed.post(f"/jobs/{job_id}/retry", headers=bob).status_code == 404
    assert (
        keyed.get(f"/status/{job_id}", headers=bearer(ALICE_KEY)).json()["state"]
        == "uploading"
    )
    assert keyed.get("/jobs", headers=bob).json() == {"jobs": []}
    mine = keyed.get("/jobs", headers=bearer(ALICE_KEY)).json()["jobs"]
    assert [job["jobId"] for job in mine] == [job_id]


def test_health_and_schema_stay_open(keyed):
    assert keyed.get("/healthz").status_code == 200
    assert keyed.get("/readyz").status_code == 200
    assert keyed.get("/metrics").status_code == 200
    assert keyed.get("/schema/openapi.json").status_code == 200
    assert keyed.get("/queue-info").status_code == 401


def test_events_take_the_key_as_query_parameter(ctx):
    app = create_app(
        Context(ctx.settings.replace(auth_mode="apikey", api_keys=f"alice:{ALICE_KEY}"))
    )
    with serve(app) as base_url:
        job_id = httpx.post(
            f"{base_url}/uploads", json=UPLOAD, headers=bearer(ALICE_KEY)
        ).json()["jobId"]
        ctx.records.transition(job_id, "cancelled", ("uploading",))

        events = status_events(f"{base_url}/events/{job_id}?access_token={ALICE_KEY}")
        elsewhere = httpx.get(f"{base_url}/status/{job_id}?access_token={ALICE_KEY}")
        without = httpx.get(f"{base_url}/events/{job_id}")

    assert [event["state"] for event in events] == ["cancelled"]
    assert elsewhere.status_code == 401
    assert without.status_code == 401


@pytest.fixture
def supabase(make_api) -> TestClient:
    return make_api(auth_mode="jwt", jwt_secret=SECRET)


def test_valid_supabase_token_is_its_subject(supabase):
    answer = supabase.post("/uploads", json=UPLOAD, headers=bearer(token(sub="u-42")))

    assert answer.status_code == 201, answer.text
    assert answer.json()["key"].startswith("u/u-42/")


def tampered() -> str:
    """A token whose payload was changed after signing."""
    head, _, signature = token(sub="someone").split(".")
    forged = jwt.utils.base64url_encode(
        json.dumps({"sub": "admin", "aud": "authenticated", "exp": 2**31}).encode()
    ).decode()
    return f"{head}.{forged}.{signature}"


@pytest.mark.parametrize(
    ("credential", "detail"),
    [
        (token(exp=int(time.time()) - 3600), "expired"),
        (tampered(), "not valid"),
        (token(aud="anon"), "not for this API"),
        (token(aud=None), "not valid"),
        (token(sub=None), "not valid"),
        (token(key="another-secret-of-at-least-32-characters!"), "not valid"),
        (jwt.encode({"sub": "x", "aud": "authenticated"}, None, "none"), "algorithm"),
        ("not-a-jwt", "not a JWT"),
    ],
    ids=[
        "expired",
        "tampered",
        "wrong-audience",
        "no-audience",
        "no-subject",
        "wrong-secret",
        "alg-none",
        "garbage",
    ],
)
def test_bad_tokens_answer_401(supabase, credential, detail):
    answer = supabase.get("/jobs", headers=bearer(credential))

    assert answer.status_code == 401
    assert detail in answer.json()["detail"]
    assert 'error="invalid_token"' in answer.headers["WWW-Authenticate"]


class KeySet:
    """A JWKS endpoint on loopback whose keys the test can rotate."""

    def __init__(self):
        self.keys: list[dict] = []
        self.fetches = 0
        key_set = self

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self):
                key_set.fetches += 1
                body = json.dumps({"keys": key_set.keys}).encode()
                self.send_response(200)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def log_message(self, *args):
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}/jwks.json"
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def publish(self, kid: str, private_key) -> None:
        """Serve only the public half of `private_key`, under `kid`."""
        algorithm = jwt.get_algorithm_by_name(
            "ES256" if isinstance(private_key, ec.EllipticCurvePrivateKey) else "RS256"
        )
        public = algorithm.to_jwk(private_key.public_key(), as_dict=True)
        self.keys = [{**public, "kid": kid, "use": "sig"}]

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()


@pytest.fixture
def key_set() -> Iterator[KeySet]:
    keys = KeySet()
    yield keys
    keys.close()


def test_jwks_tokens_survive_key_rotation(make_api, key_set, monkeypatch):
    monkeypatch.setattr(defaults, "JWKS_REFRESH_COOLDOWN_SECONDS", 0)
    old = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    new = ec.generate_private_key(ec.SECP256R1())
    key_set.publish("old", old)

    api = make_api(auth_mode="jwt", jwks_url=key_set.url)
    before = api.get("/jobs", headers=bearer(token(old, "RS256", kid="old")))
    again = api.get("/jobs", headers=bearer(token(old, "RS256", kid="old")))
    fetches_before_rotation = key_set.fetches
    key_set.publish("new", new)
    after = api.get("/jobs", headers=bearer(token(new, "ES256", kid="new")))
    retired = api.get("/jobs", headers=bearer(token(old, "RS256", kid="old")))

    assert (before.status_code, again.status_code) == (200, 200), before.text
    assert fetches_before_rotation == 1
    assert after.status_code == 200, after.text
    assert retired.status_code == 401


def test_unknown_key_ids_do_not_refetch_within_the_cooldown(make_api, key_set):
    private = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    key_set.publish("k1", private)

    api = make_api(auth_mode="jwt", jwks_url=key_set.url)
    known = api.get("/jobs", headers=bearer(token(private, "RS256", kid="k1")))
    for n in range(5):
        api.get("/jobs", headers=bearer(token(private, "RS256", kid=f"x{n}")))

    assert known.status_code == 200
    assert key_set.fetches == 1


def hs256_by_hand(secret: bytes, kid: str) -> str:
    """An HS256 token signed with any bytes (PyJWT refuses key-like secrets)."""
    encode = jwt.utils.base64url_encode
    head = encode(json.dumps({"alg": "HS256", "typ": "JWT", "kid": kid}).encode())
    body = encode(
        json.dumps({"sub": "x", "aud": "authenticated", "exp": 2**31}).encode()
    )
    signing_input = head + b"." + body
    signature = encode(hmac.new(secret, signing_input, hashlib.sha256).digest())
    return (signing_input + b"." + signature).decode()


def test_jwks_refuses_hs256_signed_with_the_public_key(make_api, key_set):
    private = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    key_set.publish("k1", private)
    public_pem = private.public_key().public_bytes(
        serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
    )

    api = make_api(auth_mode="jwt", jwks_url=key_set.url)
    answer = api.get("/jobs", headers=bearer(hs256_by_hand(public_pem, "k1")))

    assert answer.status_code == 401


@pytest.mark.parametrize(
    "changes",
    [
        {"auth_mode": "none", "api_host": "0.0.0.0"},  # noqa: S104
        {"auth_mode": "apikey", "api_keys": None},
        {"auth_mode": "apikey", "api_keys": "alice:short"},
        {"auth_mode": "apikey", "api_keys": f"alice:{ALICE_KEY},bob:{ALICE_KEY}"},
        {"auth_mode": "jwt"},
    ],
)
def test_unsafe_auth_settings_refuse_to_start(ctx, changes):
    with pytest.raises(ConfigError):
        create_app(Context(ctx.settings.replace(**changes)))
