"""The signature of a webhook: one header a receiver checks before trusting it.

    Vidqueue-Signature: t=1767225600,v1=5f2b...

`t` is when the attempt was signed (unix seconds) and `v1` the hex
HMAC-SHA256, keyed with `VIDQUEUE_WEBHOOK_SECRET`, of `"<t>.<body>"`: the
timestamp, a dot, and the request body exactly as sent. A receiver computes
the same HMAC over the body it received, compares in constant time, and
rejects a timestamp older than a few minutes (`WEBHOOK_TOLERANCE_SECONDS`), so
a captured request cannot be replayed later. Each attempt is signed afresh.
The README shows a receiver's check in a dozen lines of Python.
"""

from __future__ import annotations

import hashlib
import hmac


def signature_header(secret: str, body: bytes, timestamp: int) -> str:
    """The value of the signature header for `body` sent at `timestamp`."""
    signed = f"{timestamp}.".encode() + body
    digest = hmac.new(secret.encode(), signed, hashlib.sha256).hexdigest()
    return f"t={timestamp},v1={digest}"
