"""The API's JSON shapes and its answers to bad requests."""

from __future__ import annotations

from urllib.parse import parse_qs, urlparse

import httpx
import pytest

pytestmark = pytest.mark.integration

STATUS_FIELDS = {
    "jobId", "state", "progress", "result", "failedReason", "queuePosition",
    "stage", "createdAt", "updatedAt",
}  # fmt: skip


def ask(api, size: int = 1000, content_type: str = "video/mp4", name: str = "a.mp4"):
    return api.post(
        "/uploads", json={"filename": name, "contentType": content_type, "size": size}
    )


def test_upload_ticket_signs_type_length_and_short_expiry(api):
    answer = ask(api, size=1234)

    assert answer.status_code == 201
    ticket = answer.json()
    assert ticket["method"] == "PUT"
    assert ticket["headers"] == {"Content-Type": "video/mp4", "Content-Length": "1234"}
    assert ticket["key"] == f"u/local/{ticket['jobId']}/a.mp4"
    assert ticket["queuePosition"] == 0
    assert ticket["estimatedTime"] > 0
    # moto does not check signatures, so read what the URL signs instead.
    query = parse_qs(urlparse(ticket["url"]).query)
    signed = query["X-Amz-SignedHeaders"][0].split(";")
    assert {"content-type", "content-length", "host"} <= set(signed)
    assert 0 < int(query["X-Amz-Expires"][0]) <= 3600


def test_status_shape_of_a_new_upload(api):
    job_id = ask(api).json()["jobId"]

    status = api.get(f"/status/{job_id}")

    assert status.status_code == 200
    body = status.json()
    assert body.keys() >= STATUS_FIELDS
    assert (body["state"], body["progress"], body["result"]) == ("uploading", 0, None)


def test_queue_info_shape(api):
    ask(api)

    info = api.get("/queue-info").json()

    for name in ("waiting", "active", "completed", "failed", "total"):
        assert isinstance(info[name], int)
    assert info["total"] == 1
    assert "workers" in info
    assert "realtimeFactor" in info["throughput"]


def test_legacy_form_upload_streams_to_storage_and_queues(api, ctx, clip):
    with clip.open("rb") as video:
        answer = api.post("/upload", files={"video": ("clip.mp4", video, "video/mp4")})

    assert answer.status_code == 200, answer.text
    body = answer.json()
    assert set(body) == {"message", "jobId", "queuePosition", "estimatedTime"}
    record = ctx.records.get(body["jobId"])
    assert record.state == "waiting"
    assert record.size_bytes == clip.stat().st_size
    stored = ctx.storage.head(record.source_bucket, record.source_key)
    assert stored.size == clip.stat().st_size


def test_legacy_upload_of_many_parts_keeps_every_byte(api, ctx, tmp_path):
    big = tmp_path / "big.mp4"
    big.write_bytes(bytes(range(256)) * (20 * 1024 * 1024 // 256 + 7))

    with big.open("rb") as body:
        answer = api.post("/upload", files={"file": ("big.mp4", body, "video/mp4")})

    record = ctx.records.get(answer.json()["jobId"])
    url = ctx.storage.presign_get(record.source_bucket, record.source_key, 60)
    assert httpx.get(url).content == big.read_bytes()


GOOD = {"filename": "a.mp4", "contentType": "video/mp4", "size": 10}


def but(**changes) -> dict:
    """A good upload request with some fields changed (None removes one)."""
    body = {**GOOD, **changes}
    return {k: v for k, v in body.items() if v is not None}


@pytest.mark.parametrize(
    ("body", "status", "code"),
    [
        (but(size=None), 400, "invalid_request"),
        (but(size="big"), 400, "invalid_request"),
        (but(size=-5), 400, "invalid_request"),
        (but(filename=""), 400, "invalid_request"),
        (but(contentType="application/x-msdownload"), 415, "unsupported_media_type"),
        (but(size=10**13), 413, "too_large"),
        ([1, 2, 3], 400, "invalid_request"),
    ],
)
def test_bad_upload_requests_get_4xx_with_reason(api, body, status, code):
    answer = api.post("/uploads", json=body)

    assert answer.status_code == status, answer.text
    assert answer.json()["error"] == code
    assert answer.json()["detail"]


def test_malformed_json_gets_400(api):
    answer = api.post(
        "/uploads", content=b"{not json", headers={"Content-Type": "application/json"}
    )

    assert answer.status_code == 400
    assert answer.json()["error"] == "invalid_request"


def test_oversized_request_body_gets_413(api):
    answer = api.post(
        "/uploads",
        content=b'{"filename": "' + b"a" * 200_000 + b'"}',
        headers={"Content-Type": "application/json"},
    )

    assert answer.status_code == 413


@pytest.mark.parametrize("job_id", ["nope", "01M8Y9EDP76MDE3TSGR6HTM7TX", "../../etc"])
def test_unknown_jobs_get_404(api, job_id):
    assert api.get(f"/status/{job_id}").status_code == 404
    assert api.post(f"/uploads/{job_id}/complete").status_code == 404


def test_complete_before_the_put_gets_409(api):
    job_id = ask(api).json()["jobId"]

    answer = api.post(f"/uploads/{job_id}/complete")

    assert answer.status_code == 409
    assert answer.json()["error"] == "upload_missing"


def test_legacy_upload_refuses_bad_forms(api):
    no_file = api.post("/upload", files={"note": (None, "hello")})
    not_form = api.post("/upload", json={"video": "x"})
    wrong_type = api.post("/upload", files={"video": ("a.txt", b"hi", "text/plain")})

    assert no_file.status_code == 400
    assert not_form.status_code == 415
    assert wrong_type.status_code == 415


def test_openapi_schema_lists_the_routes(api):
    schema = api.get("/schema/openapi.json").json()

    for path in ("/uploads", "/status/{job_id}", "/queue-info", "/upload", "/healthz"):
        assert path in schema["paths"]


def test_unknown_route_and_method_get_json_errors(api):
    assert api.get("/nothing-here").json()["error"] == "not_found"
    assert api.delete("/queue-info").status_code == 405
