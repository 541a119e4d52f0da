"""`GET /`: the web page, and the script and style sheet it loads.

The page is plain HTML, CSS and JavaScript in `api/page/`, served as they are
(no build step). It loads without credentials, with every auth mode: the
person enters an API key or a Supabase access token once, the browser keeps
it, and the page sends it as `Authorization: Bearer` on each API call (and as
`?access_token=` on the event stream, which cannot carry headers).

The page uploads straight to storage from the person's browser, so real
buckets must allow the page's origin by CORS: `PUT` on the upload bucket with
any request header (`infra/terraform` sets this with `enable_cors`). The page
learns the ETags of multipart parts by listing them, so it reads no response
header from storage. The local S3 server of `vidqueue dev` allows every origin.

A Content-Security-Policy limits the page to its own scripts and styles, to
calls to the API and to the storage endpoint, and to media from storage.
"""

from __future__ import annotations

from functools import cache
from pathlib import Path
from urllib.parse import urlsplit

from litestar import Response, Router, get
from litestar.enums import MediaType
from litestar.exceptions import NotFoundException
from litestar.params import FromPath

from api.deps import ContextDep
from vidqueue import __version__
from vidqueue.settings import Settings

PAGE_DIR = Path(__file__).parent / "page"
ASSETS = {"app.js": "text/javascript", "style.css": "text/css"}
"""The files the page loads, with their media types; nothing else is served."""
ASSET_CACHE_SECONDS = 3600
"""Asset URLs carry the version, so browsers may keep them for a while."""


@get(
    "/",
    exclude_from_auth=True,
    include_in_schema=False,
    sync_to_thread=False,
    media_type=MediaType.HTML,
)
def page(ctx: ContextDep) -> Response[str]:
    """The web page, told the auth mode so that it asks for the right credential."""
    html = _template().replace("__AUTH_MODE__", ctx.settings.auth_mode)
    headers = {
        **_safety_headers(),
        "Content-Security-Policy": content_security_policy(ctx.settings),
        "Cache-Control": "no-cache",
    }
    return Response(html, media_type=MediaType.HTML, headers=headers)


@get(
    "/page/{name:str}",
    exclude_from_auth=True,
    include_in_schema=False,
    sync_to_thread=False,
)
def page_asset(name: FromPath[str]) -> Response[bytes]:
    """The page's script or style sheet; 404 for any other name."""
    media_type = ASSETS.get(name)
    if media_type is None:
        raise NotFoundException(f"no page asset {name!r}")
    headers = {
        **_safety_headers(),
        "Cache-Control": f"public, max-age={ASSET_CACHE_SECONDS}",
    }
    return Response(_asset(name), media_type=media_type, headers=headers)


page_router = Router(path="/", route_handlers=[page, page_asset])
"""The page and its files, for the app's route handlers."""


def content_security_policy(settings: Settings) -> str:
    """What the page may load and call: itself, the API, and storage.

    Uploads go to the S3 endpoint; results come from there or from the
    public base URL. Without an endpoint (AWS's default), any HTTPS origin.
    """
    storage = _origin(settings.s3_endpoint) or "https:"
    outputs = " ".join(
        dict.fromkeys([storage, _origin(settings.public_base_url) or storage])
    )
    directives = {
        "default-src": "'self'",
        "script-src": "'self'",
        "style-src": "'self'",
        "connect-src": f"'self' {storage}",
        "img-src": f"'self' data: {outputs}",
        "media-src": f"'self' {outputs}",
        "object-src": "'none'",
        "base-uri": "'none'",
        "form-action": "'self'",
        "frame-ancestors": "'none'",
    }
    return "; ".join(f"{name} {value}" for name, value in directives.items())


def _origin(url: str | None) -> str | None:
    if not url:
        return None
    parts = urlsplit(url)
    return f"{parts.scheme}://{parts.netloc}"


def _safety_headers() -> dict[str, str]:
    # Storage and other sites get no Referer naming the page, and browsers
    # never read the page's files as another type than the one sent.
    return {"X-Content-Type-Options": "nosniff", "Referrer-Policy": "no-referrer"}


@cache
def _template() -> str:
    return (PAGE_DIR / "index.html").read_text().replace("__VERSION__", __version__)


@cache
def _asset(name: str) -> bytes:
    return (PAGE_DIR / name).read_bytes()
