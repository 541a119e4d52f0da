"""A fault-injecting HTTP proxy to put in front of an S3 server.

Every component that speaks to storage (the API's presigned URLs, the
worker's boto3 calls, ffprobe and ffmpeg reading presigned GETs, a browser's
PUT) goes through it once `VIDQUEUE_S3_ENDPOINT` names the proxy. Requests
and answers pass byte for byte: the request head (with its `Host`, part of a
SigV4 signature) and body are sent upstream as they came, and the answer is
relayed as it came, keep-alive and `Expect: 100-continue` included.

While a fault is switched on, each request is, at random:

- answered by the proxy with an S3-style XML error (500 `InternalError` or
  503 `SlowDown`), as S3 answers when it is overloaded;
- dropped: the connection is closed without an answer;
- cut: the answer's head and half of its body are relayed, then the
  connection is closed, as when a network path fails mid-transfer.

The proxy knows nothing of vidqueue; it only parses HTTP/1.1 framing.
"""

from __future__ import annotations

import contextlib
import random
import socket
import socketserver
import threading
import time
from dataclasses import dataclass, field
from typing import BinaryIO

CHUNK_BYTES = 64 * 1024
_TALLY_FIELDS = {"forward": "forwarded", "error": "errors", "drop": "dropped"}
S3_ERRORS = {
    500: ("Internal Server Error", "InternalError", "We encountered an internal "
          "error. Please try again."),
    503: ("Slow Down", "SlowDown", "Please reduce your request rate."),
}  # fmt: skip


@dataclass
class Fault:
    """What the proxy does to requests while this fault lasts.

    Rates are fractions of requests (0.0 to 1.0), drawn in this order: error,
    drop, cut. `until` is a `time.monotonic()` deadline (None: until healed);
    `methods` limits the fault to requests of these HTTP methods.
    """

    error_rate: float = 0.0
    error_status: int = 503
    drop_rate: float = 0.0
    cut_rate: float = 0.0
    until: float | None = None
    methods: tuple[str, ...] | None = None

    def applies(self, method: str) -> bool:
        """True while the fault is in force for requests of `method`."""
        if self.methods is not None and method not in self.methods:
            return False
        return self.until is None or time.monotonic() < self.until


@dataclass
class Tally:
    """What the proxy did so far."""

    forwarded: int = 0
    errors: int = 0
    dropped: int = 0
    cut: int = 0
    by_method: dict[str, int] = field(default_factory=dict)


class FaultyProxy:
    """A threaded HTTP proxy on a free loopback port in front of `upstream`.

    Use it as a context manager, or `start()` and `stop()`. `fail(...)`
    switches a fault on (for `seconds`, or until `heal()`).
    """

    def __init__(self, upstream: str, seed: int | None = None):
        host, _, port = upstream.removeprefix("http://").rstrip("/").partition(":")
        self.upstream = (host, int(port or 80))
        self.random = random.Random(seed)
        self.fault = Fault(until=0.0)
        self.tally = Tally()
        self._lock = threading.Lock()
        self.server = _Server(("127.0.0.1", 0), _Handler)
        self.server.proxy = self
        self.thread = threading.Thread(
            target=self.server.serve_forever, name="faulty-proxy", daemon=True
        )

    @property
    def url(self) -> str:
        """The proxy's base URL: use it as the S3 endpoint."""
        return f"http://127.0.0.1:{self.server.server_address[1]}"

    def start(self) -> FaultyProxy:
        """Serve from a background thread."""
        self.thread.start()
        return self

    def stop(self) -> None:
        """Stop serving and close the listening socket."""
        self.server.shutdown()
        self.server.server_close()
        self.thread.join(timeout=5)

    def __enter__(self) -> FaultyProxy:
        return self.start()

    def __exit__(self, *exc_info) -> None:
        self.stop()

    def fail(
        self,
        error_rate: float = 1.0,
        seconds: float | None = None,
        status: int = 503,
        drop_rate: float = 0.0,
        cut_rate: float = 0.0,
        methods: tuple[str, ...] | None = None,
    ) -> None:
        """Switch a fault on, for `seconds` or until `heal()`."""
        until = None if seconds is None else time.monotonic() + seconds
        self.fault = Fault(error_rate, status, drop_rate, cut_rate, until, methods)

    def heal(self) -> None:
        """Forward every request again."""
        self.fault = Fault(until=0.0)

    def decide(self, method: str) -> str:
        """`forward`, `error`, `drop` or `cut` for one request, counted."""
        fault = self.fault
        action = "forward"
        if fault.applies(method):
            draw = self.random.random()
            for name, rate in (
                ("error", fault.error_rate),
                ("drop", fault.drop_rate),
                ("cut", fault.cut_rate),
            ):
                if draw < rate:
                    action = name
                    break
                draw -= rate
        with self._lock:
            counter = _TALLY_FIELDS.get(action, action)
            setattr(self.tally, counter, getattr(self.tally, counter) + 1)
            by_method = self.tally.by_method
            by_method[method] = by_method.get(method, 0) + 1
        return action


_TALLY_FIELDS = {
    "forward": "forwarded",
    "error": "errors",
    "drop": "dropped",
    "cut": "cut",
}


class _Server(socketserver.ThreadingTCPServer):
    daemon_threads = True
    allow_reuse_address = True
    proxy: FaultyProxy


class _Closed(Exception):
    """A side of the relay closed its connection."""


@dataclass
class _Head:
    raw: bytes
    first_line: str
    headers: dict[str, str]

    def header(self, name: str) -> str:
        return self.headers.get(name.lower(), "")

    @property
    def method(self) -> str:
        """A request's method."""
        return self.first_line.split(" ", 1)[0]

    @property
    def status(self) -> str:
        """An answer's status code."""
        return self.first_line.split(" ")[1]

    @property
    def keep_alive(self) -> bool:
        return "close" not in self.header("connection").lower()


def _read_head(stream: BinaryIO) -> _Head | None:
    """One request or response head, raw; None at a clean end of stream."""
    lines = []
    while True:
        line = stream.readline(65536)
        if not line:
            if lines:
                raise _Closed("the connection closed inside a head")
            return None
        if not lines and line in (b"\r\n", b"\n"):
            continue  # stray line breaks between messages
        lines.append(line)
        if line in (b"\r\n", b"\n"):
            break
    headers = {}
    for line in lines[1:-1]:
        name, _, value = line.decode("latin-1").partition(":")
        headers[name.strip().lower()] = value.strip()
    first = lines[0].decode("latin-1").strip()
    return _Head(b"".join(lines), first, headers)


def _read_answer_head(stream: BinaryIO) -> _Head:
    head = _read_head(stream)
    if head is None:
        raise _Closed("upstream closed")
    return head


def _relay_body(
    head: _Head, source: BinaryIO, sink: socket.socket | None, limit: int | None
) -> bool:
    """Copy the body that `head` announces; False when it runs until close.

    With `limit`, stops after that many bytes (a cut). `sink` None discards.
    """
    if "chunked" in head.header("transfer-encoding").lower():
        _relay_chunked(source, sink, limit)
        return True
    length = head.header("content-length")
    if length:
        _relay_exactly(source, sink, int(length), limit)
        return True
    return False


def _send(sink: socket.socket | None, data: bytes) -> None:
    if sink is not None and data:
        sink.sendall(data)


def _relay_exactly(
    source: BinaryIO, sink: socket.socket | None, size: int, limit: int | None
) -> None:
    sent = 0
    while sent < size:
        if limit is not None and sent >= limit:
            raise _Closed("cut")
        data = source.read1(min(CHUNK_BYTES, size - sent))
        if not data:
            raise _Closed("the body ended early")
        _send(sink, data)
        sent += len(data)


def _relay_chunked(
    source: BinaryIO, sink: socket.socket | None, limit: int | None
) -> None:
    sent = 0
    while True:
        size_line = source.readline(1024)
        if not size_line:
            raise _Closed("the body ended early")
        _send(sink, size_line)
        size = int(size_line.split(b";")[0].strip() or b"0", 16)
        if size == 0:
            break
        _relay_exactly(source, sink, size + 2, None if limit is None else limit - sent)
        sent += size
    while True:  # trailers, then the empty line
        line = source.readline(65536)
        if not line:
            raise _Closed("the body ended early")
        _send(sink, line)
        if line in (b"\r\n", b"\n"):
            return


def _error_answer(status: int, keep_alive: bool) -> bytes:
    reason, code, message = S3_ERRORS.get(status, S3_ERRORS[503])
    body = (
        '<?xml version="1.0" encoding="UTF-8"?>\n'
        f"<Error><Code>{code}</Code><Message>{message}</Message>"
        f"<RequestId>faulty-proxy-{random.getrandbits(32):08x}</RequestId></Error>"
    ).encode()
    head = (
        f"HTTP/1.1 {status} {reason}\r\n"
        "Content-Type: application/xml\r\n"
        f"Content-Length: {len(body)}\r\n"
        f"Connection: {'keep-alive' if keep_alive else 'close'}\r\n"
    )
    if status == 503:
        head += "Retry-After: 1\r\n"
    return (head + "\r\n").encode() + body


class _Handler(socketserver.BaseRequestHandler):
    """One client connection: its requests in turn, each forwarded or faulted."""

    def setup(self) -> None:
        self.proxy: FaultyProxy = self.server.proxy
        self.client: socket.socket = self.request
        self.client_in = self.client.makefile("rb")
        self.upstream: socket.socket | None = None
        self.upstream_in: BinaryIO | None = None

    def finish(self) -> None:
        self._close_upstream()
        with contextlib.suppress(OSError):
            self.client_in.close()

    def handle(self) -> None:
        with contextlib.suppress(_Closed, OSError, ValueError):
            while self._one_request():
                pass

    def _one_request(self) -> bool:
        """Serve one request; False when the client connection must end."""
        head = _read_head(self.client_in)
        if head is None:
            return False
        action = self.proxy.decide(head.method)
        if action == "drop":
            self._reset_client()
            return False
        if action == "error":
            return self._answer_error(head)
        return self._forward(head, cut=action == "cut")

    def _answer_error(self, head: _Head) -> bool:
        waits_for_continue = "100-continue" in head.header("expect").lower()
        # A client waiting for "100 Continue" has not sent its body: answering
        # at once and closing is what S3 does too.
        keep_alive = head.keep_alive and not waits_for_continue
        if keep_alive and not _relay_body(head, self.client_in, None, None):
            keep_alive = False
        self.client.sendall(_error_answer(self.proxy.fault.error_status, keep_alive))
        return keep_alive

    def _forward(self, head: _Head, cut: bool) -> bool:
        upstream, upstream_in = self._connect()
        upstream.sendall(head.raw)
        if "100-continue" in head.header("expect").lower():
            interim = _read_answer_head(upstream_in)
            if interim.status != "100":  # refused before the body was sent
                self._relay_answer(interim, head.method, cut)
                return False
            self.client.sendall(interim.raw)
        _relay_body(head, self.client_in, upstream, None)  # none without a length
        answer = _read_answer_head(upstream_in)
        while answer.status.startswith("1"):
            self.client.sendall(answer.raw)
            answer = _read_answer_head(upstream_in)
        return self._relay_answer(answer, head.method, cut) and head.keep_alive

    def _relay_answer(self, answer: _Head, method: str, cut: bool) -> bool:
        self.client.sendall(answer.raw)
        if method == "HEAD" or answer.status in ("204", "304"):
            return answer.keep_alive
        limit = None
        if cut:
            length = answer.header("content-length")
            # At least a byte, so that a reader resuming after each cut ends.
            limit = max(1, int(length) // 2) if length else CHUNK_BYTES
        try:
            framed = _relay_body(answer, self.upstream_in, self.client, limit)
        except _Closed:
            self._close_upstream()
            self._reset_client()
            raise
        if not framed:  # the body runs until upstream closes
            while data := self.upstream_in.read1(CHUNK_BYTES):
                self.client.sendall(data)
            self._close_upstream()
            return False
        if not answer.keep_alive:
            self._close_upstream()
        return answer.keep_alive

    def _connect(self) -> tuple[socket.socket, BinaryIO]:
        if self.upstream is None:
            self.upstream = socket.create_connection(self.proxy.upstream, timeout=120)
            self.upstream_in = self.upstream.makefile("rb")
        return self.upstream, self.upstream_in

    def _close_upstream(self) -> None:
        if self.upstream is not None:
            with contextlib.suppress(OSError):
                self.upstream_in.close()
                self.upstream.close()
        self.upstream = self.upstream_in = None

    def _reset_client(self) -> None:
        """Close the client connection at once (RST), as a failed path does."""
        with contextlib.suppress(OSError):
            self.client.setsockopt(
                socket.SOL_SOCKET, socket.SO_LINGER, b"\x01\x00\x00\x00\x00\x00\x00\x00"
            )
            self.client.close()
