"""Upload limits: keys under the user's prefix, signed requests, per-user quotas."""

from __future__ import annotations

import base64
import json
import time
from datetime import UTC, datetime

import httpx
import pytest

pytestmark = pytest.mark.integration

KEYS = "alice:alice-key-0123456789abcdef,bob:bob-key-0123456789abcdefgh"
ALICE = {"Authorization": "Bearer alice-key-0123456789abcdef"}
BOB = {"Authorization": "Bearer bob-key-0123456789abcdefgh"}


def upload(api, name="a.mp4", size=1000, headers=None, **extra):
    body = {"filename": name, "contentType": "video/mp4", "size": size, **extra}
    return api.post("/uploads", json=body, headers=headers)


@pytest.mark.parametrize(
    "name",
    [
        "../../etc/passwd.mp4",
        "..\\..\\windows\\clip.mp4",
        "/absolute/clip.mp4",
        "a/../../b.mp4",
        "%2e%2e%2fclip.mp4",
        "....//clip.mp4",
        "clip.mp4\x00.exe",
        "..",
    ],
)
def test_filenames_never_leave_the_job_folder(api, name):
    ticket = upload(api, name=name).json()

    prefix = f"u/local/{ticket['jobId']}/"
    assert ticket["key"].startswith(prefix)
    rest = ticket["key"][len(prefix) :]
    assert rest
    assert "/" not in rest
    assert "\\" not in rest
    assert rest not in (".", "..")
    assert "\x00" not in rest


def test_presigned_post_policy_fixes_key_type_and_exact_length(api, ctx):
    ticket = upload(api, size=1234, method="POST").json()

    # moto does not enforce POST policies, so read what the policy signs.
    assert ticket["method"] == "POST"
    fields = ticket["fields"]
    policy = json.loads(base64.b64decode(fields["policy"]))
    conditions = policy["conditions"]
    assert ["content-length-range", 1234, 1234] in conditions
    assert {"Content-Type": "video/mp4"} in conditions
    assert {"key": ticket["key"]} in conditions
    assert {"bucket": ctx.settings.upload_bucket} in conditions
    expires = datetime.fromisoformat(policy["expiration"].replace("Z", "+00:00"))
    lifetime_s = (expires - datetime.now(UTC)).total_seconds()
    assert 0 < lifetime_s <= ctx.settings.presign_expiry_seconds
    assert fields["Content-Type"] == "video/mp4"
    assert fields["key"] == ticket["key"]


def test_a_post_upload_goes_through(api, ctx, clip):
    size = clip.stat().st_size
    ticket = upload(api, name="clip.mp4", size=size, method="POST").json()

    sent = httpx.post(
        ticket["url"],
        data=ticket["fields"],
        files={"file": ("clip.mp4", clip.read_bytes(), "video/mp4")},
    )
    status = api.post(f"/uploads/{ticket['jobId']}/complete")

    assert sent.status_code in (200, 201, 204), sent.text
    assert status.json()["state"] == "waiting"


def test_unknown_upload_method_is_refused(api):
    answer = upload(api, method="PATCH")

    assert answer.status_code == 400
    assert answer.json()["error"] == "invalid_request"


def test_uploads_in_flight_are_limited_per_user(make_api, ctx, clip):
    api = make_api(auth_mode="apikey", api_keys=KEYS, max_uploads_in_flight=2)
    size = clip.stat().st_size
    first = upload(api, size=size, headers=ALICE).json()
    upload(api, headers=ALICE)

    refused = upload(api, headers=ALICE)
    bob = upload(api, headers=BOB)

    assert refused.status_code == 429
    assert refused.json()["error"] == "rate_limited"
    retry_after = int(refused.headers["Retry-After"])
    assert 1 <= retry_after <= ctx.settings.presign_expiry_seconds
    assert bob.status_code == 201
    assert len(api.get("/jobs", headers=ALICE).json()["jobs"]) == 2

    httpx.put(first["url"], headers=first["headers"], content=clip.read_bytes())
    api.post(f"/uploads/{first['jobId']}/complete", headers=ALICE)

    assert upload(api, headers=ALICE).status_code == 201


def test_abandoned_uploads_stop_counting_when_their_urls_expire(make_api):
    api = make_api(max_uploads_in_flight=1, presign_expiry_seconds=1)
    assert upload(api).status_code == 201
    assert upload(api).status_code == 429

    time.sleep(1.2)

    assert upload(api).status_code == 201


def test_uploads_per_minute_are_limited(make_api):
    api = make_api(max_uploads_per_minute=3)

    answers = [upload(api) for _ in range(4)]

    assert [a.status_code for a in answers] == [201, 201, 201, 429]
    assert 1 <= int(answers[-1].headers["Retry-After"]) <= 60
    assert "per minute" in answers[-1].json()["detail"]


def test_form_uploads_count_against_the_limits(make_api, clip):
    api = make_api(max_uploads_per_minute=1)
    video = ("clip.mp4", clip.read_bytes(), "video/mp4")

    first = api.post("/upload", files={"video": video})
    second = api.post("/upload", files={"video": video})

    assert first.status_code == 200, first.text
    assert second.status_code == 429
