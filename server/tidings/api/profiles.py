"""Users' profiles (producer key): ``/api/v1/users/{user_id}``.

A path that is no user id (see :mod:`tidings.core.ids`) answers 404 on GET and
DELETE, and 400 ``invalid_user_id`` on PUT.
"""

from __future__ import annotations

from aiohttp import web

from ..core import ids
from ..core.errors import NotFound
from ..core.profiles import ProfileRequest
from .http import body, producer, reply, services

routes = web.RouteTableDef()


def _user(request: web.Request) -> str:
    user = request.match_info["user_id"]
    if not ids.is_user_id(user):
        raise NotFound("Profile not found")
    return user


@routes.put("/api/v1/users/{user_id}")
async def put_profile(request: web.Request) -> web.Response:
    producer(request)
    user = ids.user_id(request.match_info["user_id"])
    req = await body(request, ProfileRequest)
    doc, created = await services(request).profiles.put(user, req)
    return reply(doc, 201 if created else 200)


@routes.get("/api/v1/users/{user_id}")
async def get_profile(request: web.Request) -> web.Response:
    producer(request)
    return reply(await services(request).profiles.get(_user(request)))


@routes.delete("/api/v1/users/{user_id}")
async def delete_profile(request: web.Request) -> web.Response:
    producer(request)
    await services(request).profiles.delete(_user(request))
    return web.Response(status=204)
