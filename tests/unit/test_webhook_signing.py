"""The Vidqueue-Signature header, checked by the receiver code the README shows."""

from __future__ import annotations

import time

import pytest

from tests.receiver import readme_verifier
from vidqueue.webhooks.signing import signature_header

SECRET = "whsec-test"
BODY = b'{"jobId":"01J0000000000000000000000","state":"completed"}'


@pytest.fixture(scope="module")
def verify():
    return readme_verifier()


def test_a_fresh_signature_verifies(verify):
    header = signature_header(SECRET, BODY, int(time.time()))

    assert verify(SECRET, header, BODY)


def test_the_header_names_its_timestamp_and_a_sha256_hex_digest():
    header = signature_header(SECRET, BODY, 1767225600)

    timestamp, digest = header.split(",")
    assert timestamp == "t=1767225600"
    assert digest.startswith("v1=")
    assert len(digest.removeprefix("v1=")) == 64
    int(digest.removeprefix("v1="), 16)


@pytest.mark.parametrize(
    "tamper",
    [
        lambda header, body: (header, body.replace(b"completed", b"failed")),
        lambda header, body: (header, body + b" "),
        lambda header, body: (header.replace("t=", "t=1", 1), body),
        lambda header, body: (header[:-1] + ("0" if header[-1] != "0" else "1"), body),
        lambda header, body: ("", body),
        lambda header, body: ("t=x,v1=00", body),
    ],
    ids=["state", "whitespace", "timestamp", "digest", "missing", "malformed"],
)
def test_a_tampered_request_fails(verify, tamper):
    header = signature_header(SECRET, BODY, int(time.time()))

    assert not verify(SECRET, *tamper(header, BODY))


def test_another_secret_fails(verify):
    header = signature_header("another-secret", BODY, int(time.time()))

    assert not verify(SECRET, header, BODY)


def test_an_old_signature_is_a_replay(verify):
    signed_at = int(time.time()) - 301
    header = signature_header(SECRET, BODY, signed_at)

    assert not verify(SECRET, header, BODY)
    assert verify(SECRET, header, BODY, tolerance_s=3600)


def test_each_timestamp_gives_another_signature():
    now = int(time.time())

    assert signature_header(SECRET, BODY, now) != signature_header(
        SECRET, BODY, now + 1
    )
