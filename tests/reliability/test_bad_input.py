"""Hostile files, malformed and oversized requests, unknown ids, through HTTP.

The API runs in a real HTTP server and a real `vidqueue worker` processes
the jobs. Every bad file ends `failed` with a reason a person can read,
every bad request gets a 4xx with `{"error", "detail"}`, and the good jobs
uploaded between them complete: the system stays up throughout.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from api.app import create_app
from tests.browser import Browser
from tests.live import serve
from tests.media import make_clip, make_hostile_files
from vidqueue.context import Context
from vidqueue.records import new_job_id

pytestmark = pytest.mark.integration

MAX_UPLOAD_BYTES = 2 * 1024 * 1024
JOB_TIMEOUT_SECONDS = 60


@pytest.fixture(scope="module")
def corpus(tmp_path_factory) -> dict[str, tuple[Path, str]]:
    """The worker's hostile files, each with the start of its reason."""
    return make_hostile_files(tmp_path_factory.mktemp("hostile"))


@pytest.fixture(scope="module")
def good_clip(tmp_path_factory) -> Path:
    """A 2-second 320x240 clip that must always complete."""
    return make_clip(tmp_path_factory.mktemp("good") / "good.mp4", size="320x240")


@pytest.fixture
def base_url(ctx: Context) -> Iterator[str]:
    """The API over real HTTP, with limits the sweep stays under."""
    settings = ctx.settings.replace(
        max_upload_bytes=MAX_UPLOAD_BYTES,
        max_uploads_per_minute=1000,
        max_uploads_in_flight=1000,
    )
    with serve(create_app(Context(settings))) as url:
        yield url


@pytest.fixture
def browser(base_url: str, worker_process) -> Iterator[Browser]:
    """A user of the API, with a `vidqueue worker` running the jobs."""
    worker_process()
    browser = Browser(base_url, attempts=1)  # nothing here may need a retry
    yield browser
    browser.close()


def assert_completes(browser: Browser, clip: Path) -> None:
    status = browser.wait(browser.upload(clip), JOB_TIMEOUT_SECONDS)
    assert status["state"] == "completed", status["failedReason"]


def test_every_hostile_file_fails_with_its_reason_and_good_jobs_go_on(
    browser: Browser, corpus, good_clip
):
    outcomes = {}
    for name, (path, reason) in corpus.items():
        if path.stat().st_size == 0:
            answer = httpx.post(
                f"{browser.base_url}/uploads",
                json={"filename": path.name, "contentType": "video/mp4", "size": 0},
            )
            outcomes[name] = (answer.status_code, answer.json()["error"])
            assert outcomes[name] == (400, "invalid_request")
        else:
            status = browser.wait(browser.upload(path), JOB_TIMEOUT_SECONDS)
            outcomes[name] = (status["state"], status["failedReason"])
            assert status["state"] == "failed", name
            assert status["failedReason"].startswith(reason), outcomes[name]
            assert status["result"] is None
        assert_completes(browser, good_clip)

    assert set(outcomes) == set(corpus)


def upload_body(**changes) -> dict:
    body = {"filename": "clip.mp4", "contentType": "video/mp4", "size": 1000}
    return {**body, **changes}


DEEP_JSON = b"[" * 20_000 + b"]" * 20_000
"""Within the body limit, but nested deeper than a decoder may recurse."""

MALFORMED = [
    ("POST", "/uploads", {"content": b"{not json"}, 400, "invalid_request"),
    ("POST", "/uploads", {"json": {}}, 400, "invalid_request"),
    ("POST", "/uploads", {"json": [1, 2, 3]}, 400, "invalid_request"),
    (
        "POST",
        "/uploads",
        {"json": {"filename": 5, "contentType": [], "size": "big"}},
        400,
        "invalid_request",
    ),
    ("POST", "/uploads", {"json": upload_body(size=-1)}, 400, "invalid_request"),
    ("POST", "/uploads", {"json": upload_body(filename=" ")}, 400, "invalid_request"),
    ("POST", "/uploads", {"json": upload_body(profile="4k-ultra")}, 400, None),
    (
        "POST",
        "/uploads",
        {"json": upload_body(contentType="text/html")},
        415,
        "unsupported_media_type",
    ),
    (
        "POST",
        "/uploads",
        {"json": upload_body(size=MAX_UPLOAD_BYTES + 1)},
        413,
        "too_large",
    ),
    (
        "POST",
        "/uploads",
        {"json": upload_body(filename="x" * 100_000)},
        413,
        "too_large",
    ),
    (
        "POST",
        "/upload",
        {"content": b"no form here", "headers": {"Content-Type": "text/plain"}},
        415,
        "unsupported_media_type",
    ),
    (
        "POST",
        "/upload",
        {"files": {"file": ("big.mp4", b"\0" * (MAX_UPLOAD_BYTES + 1), "video/mp4")}},
        413,
        "too_large",
    ),
    ("POST", "/uploads", {"content": DEEP_JSON}, 400, "invalid_request"),
    ("POST", "/hooks/storage", {"content": DEEP_JSON}, None, None),
    ("PUT", "/uploads", {"json": upload_body()}, 405, "method_not_allowed"),
    ("GET", "/no-such-route", {}, 404, "not_found"),
    ("POST", "/hooks/storage", {"content": b"{}"}, None, None),
]


@pytest.mark.parametrize(
    ("method", "path", "request_args", "status", "code"),
    MALFORMED,
    ids=[f"{m} {p} {i}" for i, (m, p, *_rest) in enumerate(MALFORMED)],
)
def test_malformed_and_oversized_requests_get_a_clear_4xx(
    base_url, method, path, request_args, status, code
):
    answer = httpx.request(method, base_url + path, timeout=30, **request_args)

    assert 400 <= answer.status_code < 500
    assert status is None or answer.status_code == status
    body = answer.json()
    assert code is None or body["error"] == code
    assert body["detail"].strip()
    assert httpx.get(base_url + "/healthz").status_code == 200


def unknown_ids() -> list[str]:
    return [new_job_id(), "not-a-job", "0" * 26, "x" * 5000, "..%2F..%2Fetc"]


@pytest.mark.parametrize(
    ("method", "template"),
    [
        ("GET", "/status/{}"),
        ("GET", "/events/{}"),
        ("POST", "/uploads/{}/complete"),
        ("DELETE", "/jobs/{}"),
        ("POST", "/jobs/{}/retry"),
    ],
)
def test_unknown_ids_are_not_found(base_url, method, template):
    for job_id in unknown_ids():
        answer = httpx.request(method, base_url + template.format(job_id), timeout=30)

        assert answer.status_code == 404, (job_id[:40], answer.text[:200])
        assert answer.json()["error"] == "not_found"


def test_requests_out_of_turn_are_refused_and_the_job_goes_on(browser, good_clip):
    ticket = browser.client.create_upload(good_clip, "video/mp4")
    job_id = ticket["jobId"]
    early = httpx.post(f"{browser.base_url}/uploads/{job_id}/complete")
    retried = httpx.post(f"{browser.base_url}/jobs/{job_id}/retry")
    assert (early.status_code, early.json()["error"]) == (409, "upload_missing")
    assert (retried.status_code, retried.json()["error"]) == (409, "conflict")

    browser.client.put_object(ticket, good_clip)
    browser.client.complete(job_id)
    status = browser.wait(job_id, JOB_TIMEOUT_SECONDS)
    assert status["state"] == "completed"
    again = httpx.post(f"{browser.base_url}/uploads/{job_id}/complete")
    cancel = httpx.delete(f"{browser.base_url}/jobs/{job_id}")
    assert again.status_code == 200  # a late duplicate is answered, not acted on
    assert (cancel.status_code, cancel.json()["error"]) == (409, "conflict")
    assert browser.status(job_id)["state"] == "completed"


def test_an_object_of_another_size_than_declared_fails_its_job(browser, good_clip):
    ticket = browser.client.create_upload(good_clip, "video/mp4")
    # S3 would refuse the body: the PUT signs its length. moto checks no
    # signature, so the wrong body lands, as a misbehaving gateway would let it.
    headers = {**ticket["headers"], "Content-Length": "10"}
    httpx.put(ticket["url"], headers=headers, content=b"0123456789")
    status = browser.client.complete(ticket["jobId"])

    assert status["state"] == "failed"
    assert "bytes were declared" in status["failedReason"]
    assert json.dumps(status).count("Signature") == 0


@pytest.mark.parametrize(
    "filename",
    ["../../etc/passwd", "a\x00b\u202e.mp4", "/abs/x.mp4", "..", "C:\\win\\x.mp4"],
)
def test_hostile_filenames_stay_in_their_job_folder(base_url, filename):
    answer = httpx.post(f"{base_url}/uploads", json=upload_body(filename=filename))

    assert answer.status_code == 201
    ticket = answer.json()
    folder, _, name = ticket["key"].rpartition("/")
    assert folder == f"u/local/{ticket['jobId']}"
    assert name not in ("", ".", "..")
