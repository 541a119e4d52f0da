"""`GET /events/{jobId}`: one job's life as server-sent events."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from itertools import groupby

import httpx
import pytest

from api.app import create_app
from tests.live import serve
from tests.sse import each_status, status_events, stream_events
from vidqueue import defaults

pytestmark = pytest.mark.integration


@pytest.fixture
def base_url(ctx) -> Iterator[str]:
    with serve(create_app(ctx)) as url:
        yield url


def new_upload(base_url: str, size: int) -> dict:
    body = {"filename": "clip.mp4", "contentType": "video/mp4", "size": size}
    answer = httpx.post(f"{base_url}/uploads", json=body)
    assert answer.status_code == 201, answer.text
    return answer.json()


class Follower(threading.Thread):
    """Reads a job's event stream in the background until it ends."""

    def __init__(self, url: str):
        super().__init__(daemon=True)
        self.url = url
        self.events: list[dict] = []
        self.first = threading.Event()
        self.error: Exception | None = None

    def run(self) -> None:
        try:
            for event in each_status(self.url):
                self.events.append(event)
                self.first.set()
        except Exception as exc:
            self.error = exc
            self.first.set()


def test_one_job_from_upload_to_completed(base_url, ctx, clip, run_worker):
    ticket = new_upload(base_url, clip.stat().st_size)
    follower = Follower(f"{base_url}/events/{ticket['jobId']}")
    follower.start()
    assert follower.first.wait(10), "no first event"

    httpx.put(ticket["url"], headers=ticket["headers"], content=clip.read_bytes())
    httpx.post(f"{base_url}/uploads/{ticket['jobId']}/complete").raise_for_status()
    run_worker()
    follower.join(30)

    assert follower.error is None
    assert not follower.is_alive(), "the stream did not end at the final state"
    states = [state for state, _ in groupby(e["state"] for e in follower.events)]
    assert states == ["uploading", "waiting", "active", "completed"]
    progress = [e["progress"] for e in follower.events if e["state"] == "active"]
    assert progress == sorted(progress)
    last = follower.events[-1]
    assert last["jobId"] == ticket["jobId"]
    assert last["progress"] == 100
    assert last["result"]["videoUrl"]


def test_a_finished_job_gives_one_event(base_url, ctx):
    ticket = new_upload(base_url, 1000)
    ctx.records.transition(ticket["jobId"], "cancelled", ("uploading",))

    events = status_events(f"{base_url}/events/{ticket['jobId']}")

    assert [e["state"] for e in events] == ["cancelled"]


def test_quiet_streams_get_heartbeats(base_url, monkeypatch):
    monkeypatch.setattr(defaults, "EVENTS_HEARTBEAT_SECONDS", 0.2)
    ticket = new_upload(base_url, 1000)

    seen = []
    for field, _value in stream_events(f"{base_url}/events/{ticket['jobId']}"):
        seen.append(field)
        if field == ":":
            break

    assert seen[-1] == ":"
    assert "data" in seen


def test_unknown_job_has_no_stream(base_url):
    answer = httpx.get(f"{base_url}/events/01M8Y9EDP76MDE3TSGR6HTM7TX")

    assert answer.status_code == 404
    assert answer.json()["error"] == "not_found"
