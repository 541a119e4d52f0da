"""How the API serves the page: without credentials, locked down, nothing else."""

from __future__ import annotations

import httpx
import pytest
from litestar.testing import TestClient

from api.app import create_app
from vidqueue.context import Context

pytestmark = pytest.mark.integration

API_KEY = "alice-key-0123456789abcdef"
APIKEY_MODE = {"auth_mode": "apikey", "api_keys": f"alice:{API_KEY}"}


@pytest.fixture
def fetch(ctx: Context):
    """GET a path from the API running on the test settings with some changed."""

    def get(path: str, **changes) -> httpx.Response:
        app = create_app(Context(ctx.settings.replace(**changes)))
        with TestClient(app) as client:
            return client.get(path)

    return get


def test_the_page_loads_without_credentials_and_names_the_auth_mode(fetch):
    answer = fetch("/", **APIKEY_MODE)

    assert answer.status_code == 200
    assert answer.headers["content-type"].startswith("text/html")
    assert 'data-auth-mode="apikey"' in answer.text
    assert "__VERSION__" not in answer.text
    assert fetch("/jobs", **APIKEY_MODE).status_code == 401  # the API stays closed


def test_the_page_may_call_only_the_api_and_storage(api, settings):
    answer = api.get("/")

    policy = dict(
        directive.strip().split(" ", 1)
        for directive in answer.headers["content-security-policy"].split(";")
    )
    assert policy["script-src"] == "'self'"
    assert policy["connect-src"] == f"'self' {settings.s3_endpoint}"
    assert settings.s3_endpoint in policy["media-src"]
    assert policy["frame-ancestors"] == "'none'"
    assert answer.headers["referrer-policy"] == "no-referrer"


def test_results_behind_a_public_base_url_may_play(fetch):
    answer = fetch("/", public_base_url="https://videos.example.com/vidqueue")

    policy = answer.headers["content-security-policy"]

    assert "media-src 'self' " in policy
    assert "https://videos.example.com" in policy.split("media-src")[1]


@pytest.mark.parametrize(
    ("name", "media_type"),
    [("app.js", "text/javascript"), ("style.css", "text/css")],
)
def test_the_page_assets_are_served(fetch, name, media_type):
    answer = fetch(f"/page/{name}", **APIKEY_MODE)

    assert answer.status_code == 200
    assert answer.headers["content-type"].startswith(media_type)
    assert answer.headers["x-content-type-options"] == "nosniff"


@pytest.mark.parametrize("name", ["index.html", "..%2Fpage.py", "missing.js"])
def test_nothing_else_is_served_as_an_asset(api, name):
    answer = api.get(f"/page/{name}")

    assert answer.status_code == 404
    assert answer.json()["error"] == "not_found"


def test_the_page_is_not_part_of_the_api_schema(api):
    paths = api.get("/schema/openapi.json").json()["paths"]

    assert "/" not in paths
    assert not [path for path in paths if path.startswith("/page")]
