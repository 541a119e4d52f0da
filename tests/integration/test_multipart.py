"""Large uploads in parts, called the way Uppy's AwsS3 plugin calls them.

The parts go to the moto S3 server with real PUTs of real bytes. moto does
not check signatures, so what the part URLs sign is read from the URLs.
"""

from __future__ import annotations

import subprocess
from pathlib import Path
from urllib.parse import parse_qs, quote, urlparse

import httpx
import pytest

from handlers.poller import poll_once
from handlers.trigger import Outcome

pytestmark = pytest.mark.integration

PART = 5 * 1024 * 1024
KEYS = "alice:alice-key-0123456789abcdef,bob:bob-key-0123456789abcdefgh"
ALICE = {"Authorization": "Bearer alice-key-0123456789abcdef"}
BOB = {"Authorization": "Bearer bob-key-0123456789abcdefgh"}


@pytest.fixture(scope="module")
def big_clip(tmp_path_factory) -> Path:
    """A one-second video of noise, lossless: about 12 MB, three parts."""
    path = tmp_path_factory.mktemp("media") / "big.mp4"
    subprocess.run(
        ["ffmpeg", "-v", "error", "-y", "-f", "lavfi", "-i",
         "testsrc2=size=640x360:rate=25:duration=1,noise=alls=100:allf=t",
         "-c:v", "libx264", "-qp", "0", "-preset", "ultrafast",
         "-pix_fmt", "yuv420p", str(path)],
        check=True,
    )  # fmt: skip
    assert path.stat().st_size > 2 * PART
    return path


def chunks(data: bytes) -> list[bytes]:
    return [data[i : i + PART] for i in range(0, len(data), PART)]


def start(api, name="big.mp4", headers=None, **metadata) -> dict:
    """Uppy's createMultipartUpload."""
    body = {
        "filename": name,
        "type": "video/mp4",
        "metadata": {"name": name, "type": "video/mp4", "relativePath": None},
    }
    body["metadata"].update(metadata)
    answer = api.post("/s3/multipart", json=body, headers=headers)
    assert answer.status_code == 200, answer.text
    return answer.json()


def query(upload: dict) -> str:
    return f"key={quote(upload['key'], safe='')}"


def sign(api, upload: dict, number: int, headers=None) -> httpx.Response:
    """Uppy's signPart."""
    return api.get(
        f"/s3/multipart/{upload['uploadId']}/{number}?{query(upload)}",
        headers=headers,
    )


def put_part(url: str, body: bytes) -> str:
    """The browser's PUT of one part; returns the ETag it reads (CORS exposes it)."""
    answer = httpx.put(url, content=body)
    assert answer.status_code == 200, answer.text
    return answer.headers["ETag"]


def complete(api, upload: dict, parts: list[dict], headers=None) -> httpx.Response:
    """Uppy's completeMultipartUpload."""
    return api.post(
        f"/s3/multipart/{upload['uploadId']}/complete?{query(upload)}",
        json={"parts": parts},
        headers=headers,
    )


def test_uppys_sequence_ends_in_a_processed_video(api, ctx, big_clip, run_worker):
    data = big_clip.read_bytes()
    pieces = chunks(data)
    upload = start(api)
    assert upload["key"] == f"u/local/{upload['jobId']}/big.mp4"

    sent = []
    first = sign(api, upload, 1).json()
    assert first["expires"] == ctx.settings.presign_expiry_seconds
    signed = parse_qs(urlparse(first["url"]).query)
    assert signed["partNumber"] == ["1"]
    assert signed["uploadId"] == [upload["uploadId"]]
    assert int(signed["X-Amz-Expires"][0]) <= ctx.settings.presign_expiry_seconds
    sent.append({"PartNumber": 1, "ETag": put_part(first["url"], pieces[0])})

    numbers = ",".join(str(n) for n in range(2, len(pieces) + 1))
    batch = api.get(
        f"/s3/multipart/{upload['uploadId']}/batch?{query(upload)}"
        f"&partNumbers={numbers}"
    ).json()["presignedUrls"]
    for number in range(2, len(pieces) + 1):
        etag = put_part(batch[str(number)], pieces[number - 1])
        sent.append({"PartNumber": number, "ETag": etag})

    listed = api.get(f"/s3/multipart/{upload['uploadId']}?{query(upload)}").json()
    assert [p["PartNumber"] for p in listed] == list(range(1, len(pieces) + 1))
    assert [p["Size"] for p in listed] == [len(piece) for piece in pieces]
    assert [p["ETag"] for p in listed] == [p["ETag"] for p in sent]

    joined = complete(api, upload, list(reversed(sent)))

    assert joined.status_code == 200, joined.text
    body = joined.json()
    assert body["location"]
    assert body["jobId"] == upload["jobId"]
    assert body["status"]["state"] == "waiting"
    record = ctx.records.get(upload["jobId"])
    assert record.size_bytes == len(data)
    url = ctx.storage.presign_get(record.source_bucket, record.source_key, 60)
    assert httpx.get(url).content == data

    run_worker()
    assert api.get(f"/status/{upload['jobId']}").json()["state"] == "completed"


def test_abort_drops_the_parts_and_cancels_the_job(api, ctx):
    upload = start(api)
    put_part(sign(api, upload, 1).json()["url"], b"x" * PART)

    aborted = api.delete(f"/s3/multipart/{upload['uploadId']}?{query(upload)}")

    assert (aborted.status_code, aborted.json()) == (200, {})
    assert api.get(f"/status/{upload['jobId']}").json()["state"] == "cancelled"
    pending = ctx.storage.client.list_multipart_uploads(
        Bucket=ctx.settings.upload_bucket
    )
    assert upload["uploadId"] not in [u["UploadId"] for u in pending.get("Uploads", [])]
    assert sign(api, upload, 2).status_code == 404


def test_parts_over_the_limit_fail_the_job_at_complete(make_api, ctx):
    api = make_api(max_upload_bytes=PART + 1000)
    upload = start(api)
    parts = [
        {"PartNumber": n, "ETag": put_part(sign(api, upload, n).json()["url"], body)}
        for n, body in ((1, b"a" * PART), (2, b"b" * 2000))
    ]

    answer = complete(api, upload, parts)

    assert answer.status_code == 413
    assert answer.json()["error"] == "too_large"
    status = api.get(f"/status/{upload['jobId']}").json()
    assert status["state"] == "failed"
    assert "limit" in status["failedReason"]
    key = ctx.records.get(upload["jobId"]).source_key
    assert ctx.storage.head(ctx.settings.upload_bucket, key) is None


def test_a_declared_size_is_held_to(api):
    too_big = api.post(
        "/s3/multipart",
        json={"filename": "a.mp4", "type": "video/mp4", "metadata": {"size": 10**13}},
    )
    upload = start(api, size=str(PART + 10))

    assert too_big.status_code == 413
    assert sign(api, upload, 2).status_code == 200
    assert sign(api, upload, 3).status_code == 400
    parts = [
        {"PartNumber": n, "ETag": put_part(sign(api, upload, n).json()["url"], body)}
        for n, body in ((1, b"a" * PART), (2, b"b" * 5))
    ]
    answer = complete(api, upload, parts)
    assert answer.status_code == 400
    assert "declared" in answer.json()["detail"]


@pytest.mark.parametrize("number", [0, -1, 10001])
def test_part_numbers_out_of_range_are_refused(api, number):
    upload = start(api)

    assert sign(api, upload, number).status_code == 400


def test_wrong_etags_and_missing_parts_are_refused(api):
    upload = start(api)
    etag = put_part(sign(api, upload, 1).json()["url"], b"a" * 100)

    wrong = complete(api, upload, [{"PartNumber": 1, "ETag": '"0000"'}])
    missing = complete(api, upload, [{"PartNumber": 2, "ETag": etag}])
    empty = complete(api, upload, [])
    malformed = complete(api, upload, [{"PartNumber": "one"}])

    assert [a.status_code for a in (wrong, missing, empty, malformed)] == [400] * 4
    assert api.get(f"/status/{upload['jobId']}").json()["state"] == "uploading"


def test_other_users_uploads_answer_404(make_api):
    api = make_api(auth_mode="apikey", api_keys=KEYS)
    alice = start(api, headers=ALICE)
    other = start(api, name="other.mp4", headers=ALICE)
    swapped = {**alice, "key": other["key"]}

    assert sign(api, alice, 1, headers=ALICE).status_code == 200
    assert sign(api, alice, 1, headers=BOB).status_code == 404
    assert sign(api, swapped, 1, headers=ALICE).status_code == 404
    assert complete(api, alice, [], headers=BOB).status_code == 404
    lister = f"/s3/multipart/{alice['uploadId']}?{query(alice)}"
    assert api.get(lister, headers=BOB).status_code == 404
    assert api.delete(lister, headers=BOB).status_code == 404
    assert api.delete(lister, headers=ALICE).status_code == 200
    assert api.post("/s3/multipart", json={}).status_code == 401


def test_uppys_form_post_for_small_files(api, ctx, clip):
    size = clip.stat().st_size
    answer = api.get(
        "/s3/params",
        params={"filename": "clip.mp4", "type": "video/mp4", "metadata[size]": size},
    )
    assert answer.status_code == 200, answer.text
    params = answer.json()
    assert params["method"] == "POST"

    httpx.post(
        params["url"],
        data=params["fields"],
        files={"file": ("clip.mp4", clip.read_bytes(), "video/mp4")},
    ).raise_for_status()

    assert poll_once(ctx)[Outcome.ENQUEUED] == 1
    assert api.get(f"/status/{params['jobId']}").json()["state"] == "waiting"
    no_size = api.get("/s3/params", params={"filename": "a.mp4", "type": "video/mp4"})
    assert no_size.status_code == 400
