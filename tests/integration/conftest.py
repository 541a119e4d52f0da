"""Fixtures for the API under settings other than the defaults."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from contextlib import ExitStack

import pytest
from litestar.testing import TestClient

from api.app import create_app
from vidqueue.context import Context


@pytest.fixture
def make_api(ctx: Context) -> Iterator[Callable[..., TestClient]]:
    """Build API clients on the test's services with some settings changed.

    `make_api(auth_mode="apikey", api_keys=...)` returns a started client;
    every client is closed after the test.
    """
    with ExitStack() as stack:

        def make(**changes) -> TestClient:
            app = create_app(Context(ctx.settings.replace(**changes)))
            return stack.enter_context(TestClient(app))

        yield make
