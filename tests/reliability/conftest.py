"""Fixtures of the fault campaign: storage reached through a fault proxy."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from tests.faults import FaultyProxy
from vidqueue import services
from vidqueue.settings import Settings


@pytest.fixture
def proxy(s3_server: services.Service) -> Iterator[FaultyProxy]:
    """A fault-injecting proxy in front of the session's S3 server."""
    with FaultyProxy(s3_server.url, seed=0) as proxy:
        yield proxy


@pytest.fixture
def settings(
    settings: Settings, proxy: FaultyProxy, monkeypatch: pytest.MonkeyPatch
) -> Settings:
    """The test settings, with every component reaching storage via `proxy`."""
    from processor import job

    monkeypatch.setenv("VIDQUEUE_S3_ENDPOINT", proxy.url)
    job._context.cache_clear()
    return settings.replace(s3_endpoint=proxy.url)
