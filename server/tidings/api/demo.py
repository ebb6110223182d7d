"""The demo inbox page at ``/``, the bundled JavaScript client, the stylesheet the demo page
and the console share, and dev tokens for the page."""

from __future__ import annotations

from pathlib import Path

from aiohttp import web

from ..auth import mint
from ..core import errors, origins
from ..core.errors import NotFound
from ..core.ids import user_id
from .http import reply, services

routes = web.RouteTableDef()

STATIC = Path(__file__).resolve().parent.parent / "static"
DEV_TOKEN_TTL = 3600
_NO_CACHE = {"Cache-Control": "no-cache"}


def client_js() -> Path:
    """The packaged client (installed wheel), else the source tree's ``client_js/src/index.js``."""
    packaged = STATIC / "tidings.js"
    if packaged.is_file():
        return packaged
    return STATIC.parent.parent.parent / "client_js" / "src" / "index.js"


@routes.get("/")
async def index(request: web.Request) -> web.FileResponse:
    return web.FileResponse(STATIC / "index.html", headers=_NO_CACHE)


@routes.get("/static/tidings.js")
async def client(request: web.Request) -> web.FileResponse:
    return web.FileResponse(client_js(), headers={
        **_NO_CACHE, "Content-Type": "text/javascript; charset=utf-8"})


@routes.get("/static/tidings.css")
async def stylesheet(request: web.Request) -> web.FileResponse:
    return web.FileResponse(STATIC / "tidings.css", headers={
        **_NO_CACHE, "Content-Type": "text/css; charset=utf-8"})


@routes.get("/api/v1/dev/token")
async def dev_token(request: web.Request) -> web.Response:
    """A user token for the demo page; only in dev mode, only where the server signs tokens,
    and on a loopback bind only to requests naming this machine (not a rebound DNS name)."""
    s = services(request).settings
    if not s.dev_mode or not s.jwt_secret:
        raise NotFound("dev tokens are only given in dev mode")
    if not origins.host_allowed(request.headers.get("Host"), s.public_url,
                                origins.is_loopback(s.host)):
        raise errors.HOST_NOT_ALLOWED.error(
            "dev tokens are given only to requests naming a loopback host or the public URL's host")
    user = user_id(request.query.get("user") or "alice")
    return reply({"token": mint(s.jwt_secret, user, DEV_TOKEN_TTL, audience=s.jwt_audience,
                                issuer=s.jwt_issuer), "expires_in": DEV_TOKEN_TTL})
