"""The caller's channel preferences (user token): ``/api/v1/me/preferences``."""

from __future__ import annotations

from aiohttp import web

from ..core.preferences import PreferencesPatch
from .http import body, reply, services, user

routes = web.RouteTableDef()


@routes.get("/api/v1/me/preferences")
async def get_preferences(request: web.Request) -> web.Response:
    me = await user(request)
    return reply(await services(request).preferences.document(me.user_id))


@routes.patch("/api/v1/me/preferences")
async def patch_preferences(request: web.Request) -> web.Response:
    me = await user(request)
    patch = await body(request, PreferencesPatch)
    return reply(await services(request).preferences.patch(me.user_id, patch))
