"""What a page needs for Web Push: the server's public VAPID key and the service worker.

``GET /api/v1/webpush/key`` answers ``{"public_key": ...}``, the
``applicationServerKey`` a page subscribes with (no credentials: it is public),
or 404 ``webpush_not_configured`` when no ``TIDINGS_VAPID_PRIVATE_KEY`` is set.
``GET /tidings-sw.js`` is the service worker that shows a push and focuses or
opens the inbox when it is clicked; served from the root so its scope can be
the whole site.
"""

from __future__ import annotations

from aiohttp import web

from ..core import errors
from .demo import STATIC
from .http import reply, services

routes = web.RouteTableDef()


@routes.get("/api/v1/webpush/key")
async def public_key(request: web.Request) -> web.Response:
    key = services(request).vapid_public_key
    if key is None:
        raise errors.WEBPUSH_NOT_CONFIGURED.error(
            "Web Push is not configured on this server (no TIDINGS_VAPID_PRIVATE_KEY)")
    return reply({"public_key": key})


@routes.get("/tidings-sw.js")
async def service_worker(request: web.Request) -> web.FileResponse:
    return web.FileResponse(STATIC / "tidings-sw.js", headers={
        "Cache-Control": "no-cache", "Content-Type": "text/javascript; charset=utf-8",
        "Service-Worker-Allowed": "/"})
