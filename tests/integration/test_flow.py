"""The whole path of an upload: presign, PUT, trigger, worker, result."""

from __future__ import annotations

from pathlib import Path

import httpx
import pytest

from handlers.poller import poll_once
from handlers.trigger import Outcome
from tests.media import ffprobe, stream_of

pytestmark = pytest.mark.integration


def put(ticket: dict, body: bytes) -> httpx.Response:
    """Send bytes with a ticket's presigned request, as a browser does."""
    return httpx.request(
        ticket["method"], ticket["url"], headers=ticket["headers"], content=body
    )


def new_upload(api, path: Path, content_type: str = "video/mp4") -> dict:
    body = {
        "filename": path.name,
        "contentType": content_type,
        "size": path.stat().st_size,
    }
    answer = api.post("/uploads", json=body)
    assert answer.status_code == 201, answer.text
    return answer.json()


def test_complete_call_leads_to_a_playable_mp4(api, ctx, clip, run_worker, tmp_path):
    ticket = new_upload(api, clip)
    assert put(ticket, clip.read_bytes()).status_code == 200

    status = api.post(f"/uploads/{ticket['jobId']}/complete").json()
    assert status["state"] == "waiting"
    assert status["queuePosition"] == 0

    run_worker()

    status = api.get(f"/status/{ticket['jobId']}").json()
    assert status["state"] == "completed", status
    assert status["progress"] == 100
    result = status["result"]
    assert (result["width"], result["height"]) == (640, 360)
    assert result["duration"] == pytest.approx(2.0, abs=0.1)

    output = tmp_path / "out.mp4"
    output.write_bytes(httpx.get(result["videoUrl"]).content)
    assert result["sizeBytes"] == output.stat().st_size
    report = ffprobe(output)
    video, audio = stream_of(report, "video"), stream_of(report, "audio")
    assert video["codec_name"] == "h264"
    assert video["avg_frame_rate"] == "30/1"
    assert audio["codec_name"] == "aac"
    assert float(report["format"]["duration"]) == pytest.approx(2.0, abs=0.15)


def test_poller_finds_an_upload_without_complete_call(api, ctx, clip, run_worker):
    ticket = new_upload(api, clip)
    assert poll_once(ctx)[Outcome.NOT_ARRIVED] == 1

    put(ticket, clip.read_bytes())
    assert poll_once(ctx)[Outcome.ENQUEUED] == 1
    assert poll_once(ctx)[Outcome.ENQUEUED] == 0
    assert api.get(f"/status/{ticket['jobId']}").json()["state"] == "waiting"

    run_worker()
    assert api.get(f"/status/{ticket['jobId']}").json()["state"] == "completed"


def test_complete_and_poller_together_make_one_job(api, ctx, clip):
    ticket = new_upload(api, clip)
    put(ticket, clip.read_bytes())

    api.post(f"/uploads/{ticket['jobId']}/complete")
    api.post(f"/uploads/{ticket['jobId']}/complete")
    poll_once(ctx)

    assert len(ctx.queue) == 1
    assert ctx.records.counts()["waiting"] == 1


def test_object_of_another_size_fails_the_job(api, ctx, clip):
    ticket = new_upload(api, clip)
    # moto does not check signed headers; a real S3 endpoint would refuse this
    # PUT outright. The trigger must refuse it either way.
    httpx.put(ticket["url"], content=clip.read_bytes()[:1000])

    status = api.post(f"/uploads/{ticket['jobId']}/complete").json()

    assert status["state"] == "failed"
    assert "1000 bytes" in status["failedReason"]
    assert len(ctx.queue) == 0


def test_non_video_fails_and_the_next_upload_completes(
    api, ctx, clip, run_worker, tmp_path
):
    text = tmp_path / "notes.mp4"
    text.write_text("this is not a video\n" * 100)
    bad = new_upload(api, text)
    put(bad, text.read_bytes())
    api.post(f"/uploads/{bad['jobId']}/complete")
    good = new_upload(api, clip)
    put(good, clip.read_bytes())
    api.post(f"/uploads/{good['jobId']}/complete")

    run_worker()

    bad_status = api.get(f"/status/{bad['jobId']}").json()
    assert bad_status["state"] == "failed"
    assert bad_status["failedReason"].startswith("not a video")
    assert "Traceback" not in bad_status["failedReason"]
    assert api.get(f"/status/{good['jobId']}").json()["state"] == "completed"
    info = api.get("/queue-info").json()
    assert (info["completed"], info["failed"]) == (1, 1)
