"""Errors as users see them: JSON `{error, detail}`, 4xx for input, 503 for outages."""

from __future__ import annotations

import pytest

from vidqueue.services import free_port

pytestmark = pytest.mark.integration

JOB = "01M8Y9EDP76MDE3TSGR6HTM7TX"


def test_redis_outage_answers_503_not_500(make_api):
    api = make_api(redis_url=f"redis://127.0.0.1:{free_port()}/0")

    answers = [
        api.get(f"/status/{JOB}"),
        api.get("/jobs"),
        api.post(
            "/uploads",
            json={"filename": "a.mp4", "contentType": "video/mp4", "size": 9},
        ),
    ]

    for answer in answers:
        assert answer.status_code == 503
        assert answer.json()["error"] == "unavailable"
        assert answer.headers["Retry-After"]


JSON = {"Content-Type": "application/json"}
BAD_INPUT = [
    ("post", "/uploads", {"content": b"hi", "headers": {"Content-Type": "text/plain"}}),
    ("post", "/s3/multipart", {"content": b"{bad", "headers": JSON}),
    (
        "post",
        "/s3/multipart",
        {"json": {"filename": "a.mp4", "type": "video/mp4", "metadata": {"size": 1.5}}},
    ),
    ("get", "/s3/multipart/x/1", {}),
    ("get", "/jobs?limit=abc", {}),
    ("get", "/status/" + "A" * 5000, {}),
]
OVERSIZED = [
    (
        "post",
        f"/s3/multipart/x/complete?key=u/local/{JOB}/a.mp4",
        {"content": b"[" * (2 * 1024 * 1024), "headers": JSON},
    ),
    ("get", "/s3/params?filename=a.mp4&type=video/mp4&size=99999999999999999999", {}),
]


@pytest.mark.parametrize(
    ("method", "path", "kwargs", "status"),
    [(*case, 400) for case in BAD_INPUT[:-1]]
    + [(*BAD_INPUT[-1], 404)]
    + [(*case, 413) for case in OVERSIZED],
)
def test_bad_input_gets_4xx_json(api, method, path, kwargs, status):
    answer = getattr(api, method)(path, **kwargs)

    assert answer.status_code == status, answer.text
    body = answer.json()
    assert set(body) == {"error", "detail"}
    assert len(body["detail"]) < 500
