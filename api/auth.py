"""Who is calling. With authentication off, every caller is the local user."""

from __future__ import annotations

from litestar import Request

from vidqueue import defaults


def current_user(request: Request) -> str:
    """The id of the user making `request`."""
    return defaults.DEFAULT_USER
