"""Reading server-sent events the way a browser's EventSource does."""

from __future__ import annotations

import json
from collections.abc import Iterator

import httpx


def stream_events(
    url: str, headers: dict[str, str] | None = None, timeout_s: float = 60.0
) -> Iterator[tuple[str, str]]:
    """Each `(field, value)` line of an event stream: `data`, `event` or `:`."""
    with httpx.stream("GET", url, headers=headers, timeout=timeout_s) as answer:
        answer.raise_for_status()
        assert answer.headers["content-type"].startswith("text/event-stream")
        for line in answer.iter_lines():
            if line.startswith(":"):
                yield ":", line[1:].strip()
            elif line:
                field, _, value = line.partition(":")
                yield field, value.strip()


def each_status(url: str, headers: dict[str, str] | None = None) -> Iterator[dict]:
    """The JSON of each `status` event, as it arrives, until the stream ends."""
    for field, value in stream_events(url, headers):
        if field == "data":
            yield json.loads(value)


def status_events(url: str, headers: dict[str, str] | None = None) -> list[dict]:
    """The JSON of every `status` event, until the server ends the stream."""
    return list(each_status(url, headers))
