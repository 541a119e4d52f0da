"""A webhook receiver on 127.0.0.1 for tests, and the README's signature check."""

from __future__ import annotations

import http.server
import re
import threading
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

README = Path(__file__).resolve().parents[1] / "README.md"


@dataclass
class Received:
    """One request as the receiver got it."""

    path: str
    headers: dict[str, str]
    body: bytes


class Receiver:
    """An HTTP server on a free port of 127.0.0.1 that records each request.

    It answers the requests with `statuses` in turn, the last one repeating.
    Use it as a context manager: it serves from a thread until the block ends.
    """

    def __init__(self, statuses: tuple[int, ...] = (200,)):
        self.statuses = list(statuses)
        self.requests: list[Received] = []
        self.server = http.server.HTTPServer(("127.0.0.1", 0), self._handler())
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)

    @property
    def url(self) -> str:
        """The receiver's base URL."""
        return f"http://127.0.0.1:{self.server.server_port}"

    def __enter__(self) -> Receiver:
        self.thread.start()
        return self

    def __exit__(self, *_exc) -> None:
        self.server.shutdown()
        self.server.server_close()
        self.thread.join()

    def answer(self, received: Received) -> int:
        """Record a request; returns the status to answer it with."""
        self.requests.append(received)
        turn = min(len(self.requests), len(self.statuses))
        return self.statuses[turn - 1]

    def _handler(self) -> type[http.server.BaseHTTPRequestHandler]:
        receiver = self

        class Handler(http.server.BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                body = self.rfile.read(int(self.headers.get("Content-Length", 0)))
                status = receiver.answer(Received(self.path, dict(self.headers), body))
                self.send_response(status)
                self.send_header("Content-Length", "2")
                self.end_headers()
                self.wfile.write(b"ok")

            def log_message(self, *_args) -> None:
                pass

        return Handler


def readme_verifier() -> Callable[..., bool]:
    """`verify_webhook` exactly as the README shows it to receivers."""
    blocks = re.findall(r"```python\n(.*?)```", README.read_text(), re.DOTALL)
    [source] = [block for block in blocks if "def verify_webhook" in block]
    namespace: dict = {}
    exec(compile(source, str(README), "exec"), namespace)  # noqa: S102 - our README
    return namespace["verify_webhook"]
