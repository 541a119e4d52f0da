"""A webhook receiver on 127.0.0.1 for tests, and the README's signature check."""

from __future__ import annotations

import http.server
import re
import ssl
import threading
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID

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

    def __init__(
        self,
        statuses: tuple[int, ...] = (200,),
        tls: ssl.SSLContext | None = None,
        host: str = "127.0.0.1",
    ):
        self.statuses = list(statuses)
        self.requests: list[Received] = []
        self.server = http.server.HTTPServer(("127.0.0.1", 0), self._handler())
        if tls is not None:
            self.server.socket = tls.wrap_socket(self.server.socket, server_side=True)
        self.scheme = "https" if tls else "http"
        self.host = host
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)

    @property
    def url(self) -> str:
        """The receiver's base URL, naming it by `host`."""
        return f"{self.scheme}://{self.host}:{self.server.server_port}"

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


def self_signed(folder: Path, name: str) -> tuple[ssl.SSLContext, Path]:
    """A server's TLS context with a certificate for `name` that signs itself.

    Returns the context and the certificate's file, which clients trust.
    """
    key = ec.generate_private_key(ec.SECP256R1())
    subject = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, name)])
    now = datetime.now(UTC)
    certificate = (
        x509.CertificateBuilder()
        .subject_name(subject)
        .issuer_name(subject)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - timedelta(minutes=5))
        .not_valid_after(now + timedelta(hours=1))
        .add_extension(x509.SubjectAlternativeName([x509.DNSName(name)]), False)
        .add_extension(x509.BasicConstraints(ca=True, path_length=None), True)
        .sign(key, hashes.SHA256())
    )
    cert_file, key_file = folder / f"{name}.crt", folder / f"{name}.key"
    cert_file.write_bytes(certificate.public_bytes(serialization.Encoding.PEM))
    key_file.write_bytes(
        key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        )
    )
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    context.load_cert_chain(cert_file, key_file)
    return context, cert_file


def readme_verifier() -> Callable[..., bool]:
    """`verify_webhook` exactly as the README shows it to receivers."""
    blocks = re.findall(r"```python\n(.*?)```", README.read_text(), re.DOTALL)
    [source] = [block for block in blocks if "def verify_webhook" in block]
    namespace: dict = {}
    exec(compile(source, str(README), "exec"), namespace)  # noqa: S102 - our README
    return namespace["verify_webhook"]
