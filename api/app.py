"""The Litestar application."""

from __future__ import annotations

from litestar import Litestar
from litestar.datastructures import State
from litestar.di import Provide
from litestar.openapi import OpenAPIConfig
from litestar.openapi.plugins import SwaggerRenderPlugin
from litestar.openapi.spec import Components, SecurityScheme

from api.auth import auth_middleware, current_user
from api.control import ControlController
from api.errors import EXCEPTION_HANDLERS
from api.events import job_events
from api.health import HealthController
from api.hooks import storage_hook
from api.legacy import legacy_upload
from api.multipart import MultipartController
from api.page import page_router
from api.reader import READER_STATE_KEY, ReaderSlot
from api.status import StatusController
from api.uploads import UploadController
from vidqueue import __version__, defaults
from vidqueue.context import Context

BEARER = SecurityScheme(
    type="http",
    scheme="bearer",
    description="An API key, or a Supabase access token, as the auth mode says.",
)


def create_app(ctx: Context | None = None) -> Litestar:
    """The API on `ctx` (by default, a context on the environment's settings)."""
    ctx = ctx or Context.from_env()

    def provide_context() -> Context:
        return ctx

    reader = ReaderSlot(ctx)
    return Litestar(
        route_handlers=[
            UploadController,
            StatusController,
            ControlController,
            legacy_upload,
            MultipartController,
            HealthController,
            job_events,
            storage_hook,
            page_router,
        ],
        dependencies={
            "ctx": Provide(provide_context, sync_to_thread=False),
            "user": Provide(current_user, sync_to_thread=False),
        },
        state=State({READER_STATE_KEY: reader}),
        on_startup=[reader.open],
        on_shutdown=[reader.close],
        middleware=auth_middleware(ctx.settings),
        exception_handlers=EXCEPTION_HANDLERS,
        request_max_body_size=defaults.REQUEST_BODY_LIMIT_BYTES,
        openapi_config=OpenAPIConfig(
            title="vidqueue",
            version=__version__,
            description="Uploads straight to storage, a video queue, job status.",
            path="/schema",
            render_plugins=[SwaggerRenderPlugin()],
            components=Components(security_schemes={"bearer": BEARER}),
            security=[{"bearer": []}] if ctx.settings.auth_mode != "none" else None,
        ),
        logging_config=None,
        debug=False,
    )
