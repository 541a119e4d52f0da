"""A user of the public API that retries what a web page would retry.

`Browser` uploads as the page does (`POST /uploads`, the presigned PUT,
`POST /uploads/{jobId}/complete`), reads status and follows event streams.
A 5xx answer, a 429 or a dropped connection is tried again after a pause,
a bounded number of times; any other error is the API's final word.
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable
from pathlib import Path
from typing import TypeVar

import httpx

from vidqueue import defaults
from vidqueue.client import ApiError, ApiUnreachable, Client

T = TypeVar("T")

ATTEMPTS = 12
PAUSE_SECONDS = 1.0


class Browser:
    """The API at `base_url`, used with a web page's patience."""

    def __init__(self, base_url: str, attempts: int = ATTEMPTS):
        self.base_url = base_url
        self.client = Client(base_url, timeout_s=30)
        self.attempts = attempts
        self.retries = 0
        """Requests tried again so far."""

    def close(self) -> None:
        """Close the connections."""
        self.client.close()

    def patiently(self, call: Callable[..., T], *args) -> T:
        """`call(*args)`, tried again on answers and faults that may pass."""
        for attempt in range(1, self.attempts + 1):
            try:
                return call(*args)
            except ApiError as exc:
                if exc.status < 500 and exc.status != 429:
                    raise
                if attempt == self.attempts:
                    raise
            except (ApiUnreachable, httpx.TransportError):
                if attempt == self.attempts:
                    raise
            self.retries += 1
            time.sleep(PAUSE_SECONDS * min(attempt, 5))
        raise AssertionError("unreachable")

    def upload(self, path: Path, content_type: str = "video/mp4") -> str:
        """Upload the file the page's way; returns the job id."""
        ticket = self.patiently(self.client.create_upload, path, content_type)
        self.patiently(self.client.put_object, ticket, path)
        self.patiently(self.client.complete, ticket["jobId"])
        return ticket["jobId"]

    def status(self, job_id: str) -> dict:
        """The job's status, as `GET /status/{jobId}` answers it."""
        return self.patiently(self.client.status, job_id)

    def wait(self, job_id: str, timeout_s: float, interval_s: float = 0.5) -> dict:
        """Poll the status until the job ends or `timeout_s` passes; the last one."""
        deadline = time.monotonic() + timeout_s
        status = self.status(job_id)
        while status["state"] not in defaults.FINAL_STATES:
            if time.monotonic() > deadline:
                break
            time.sleep(interval_s)
            status = self.status(job_id)
        return status

    def follow(self, job_id: str, timeout_s: float) -> list[str]:
        """The states a listener on `GET /events/{jobId}` sees, until the end.

        Like EventSource, it connects again when the stream breaks, a bounded
        number of times.
        """
        states: list[str] = []
        deadline = time.monotonic() + timeout_s
        for _ in range(self.attempts):
            try:
                self._listen(job_id, states, deadline)
            except (httpx.TransportError, httpx.HTTPStatusError):
                self.retries += 1
                time.sleep(PAUSE_SECONDS)
                continue
            if (states and states[-1] in defaults.FINAL_STATES) or (
                time.monotonic() > deadline
            ):
                break
        return states

    def _listen(self, job_id: str, states: list[str], deadline: float) -> None:
        url = f"{self.base_url}/events/{job_id}"
        timeout = httpx.Timeout(10, read=defaults.EVENTS_HEARTBEAT_SECONDS * 2)
        with httpx.stream("GET", url, timeout=timeout) as answer:
            answer.raise_for_status()
            for line in answer.iter_lines():
                if line.startswith("data:"):
                    state = json.loads(line[5:])["state"]
                    if not states or states[-1] != state:
                        states.append(state)
                if time.monotonic() > deadline:
                    return
