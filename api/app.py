"""The Litestar application."""

from __future__ import annotations

from litestar import Litestar
from litestar.di import Provide
from litestar.openapi import OpenAPIConfig
from litestar.openapi.plugins import SwaggerRenderPlugin

from api.auth import current_user
from api.control import ControlController
from api.errors import EXCEPTION_HANDLERS
from api.legacy import legacy_upload
from api.status import StatusController
from api.uploads import UploadController
from vidqueue import __version__, defaults
from vidqueue.context import Context


def create_app(ctx: Context | None = None) -> Litestar:
    """The API on `ctx` (by default, a context on the environment's settings)."""
    ctx = ctx or Context.from_env()

    def provide_context() -> Context:
        return ctx

    return Litestar(
        route_handlers=[
            UploadController,
            StatusController,
            ControlController,
            legacy_upload,
        ],
        dependencies={
            "ctx": Provide(provide_context, sync_to_thread=False),
            "user": Provide(current_user, sync_to_thread=False),
        },
        exception_handlers=EXCEPTION_HANDLERS,
        request_max_body_size=defaults.REQUEST_BODY_LIMIT_BYTES,
        openapi_config=OpenAPIConfig(
            title="vidqueue",
            version=__version__,
            description="Uploads straight to storage, a video queue, job status.",
            path="/schema",
            render_plugins=[SwaggerRenderPlugin()],
        ),
        logging_config=None,
        debug=False,
    )
