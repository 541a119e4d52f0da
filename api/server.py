"""Running the API: uvicorn with the options vidqueue wants in production."""

from __future__ import annotations

import gc

import uvicorn
from litestar import Litestar

from vidqueue import defaults
from vidqueue.settings import Settings


def serve(app: Litestar, settings: Settings) -> None:
    """Serve `app` on the configured host and port until stopped.

    Everything loaded until now (the app, its libraries) lives as long as the
    process, so it is moved out of the garbage collector's reach first: full
    collections then walk only what requests create, which keeps them short
    and latency even under many pollers. Collections also run less often
    (`API_GC_THRESHOLDS`): requests make many short-lived objects and few
    cycles. uvicorn uses uvloop and httptools.
    """
    gc.collect()
    gc.freeze()
    gc.set_threshold(*defaults.API_GC_THRESHOLDS)
    uvicorn.run(
        app,
        host=settings.api_host,
        port=settings.api_port,
        log_config=None,
        access_log=False,
        timeout_graceful_shutdown=5,
    )
