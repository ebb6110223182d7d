"""The caller's push devices: ``/api/v1/me/devices`` and ``/api/v1/me/devices/{token}``.

Another user's device answers 404, exactly like a token nobody registered, and
so does a path that no platform's token format allows (a NUL, a space).
"""

from __future__ import annotations

import msgspec
from aiohttp import web

from ..core.errors import NotFound
from ..core.ids import check_device_token, is_device_token
from ..core.schemas import DeviceRequest, DeviceUpdate
from ..store import devices
from .http import body, reply, services, user

routes = web.RouteTableDef()


@routes.post("/api/v1/me/devices")
async def register(request: web.Request) -> web.Response:
    me = await user(request)
    req = await body(request, DeviceRequest)
    check_device_token(req.platform, req.token)
    row, created = await devices.register(services(request).pool, me.user_id, req.platform,
                                          req.token, req.app_id, req.name, req.active)
    return reply(dict(row), 201 if created else 200)


@routes.get("/api/v1/me/devices")
async def list_devices(request: web.Request) -> web.Response:
    me = await user(request)
    rows = await devices.list_for(services(request).pool, me.user_id)
    return reply({"devices": [dict(r) for r in rows]})


def _token(request: web.Request) -> str:
    token = request.match_info["token"]
    if not is_device_token(token):
        raise NotFound("Device not found")
    return token


@routes.get("/api/v1/me/devices/{token}")
async def get_device(request: web.Request) -> web.Response:
    me = await user(request)
    row = await devices.get(services(request).pool, me.user_id, _token(request))
    if row is None:
        raise NotFound("Device not found")
    return reply(dict(row))


@routes.put("/api/v1/me/devices/{token}")
async def update_device(request: web.Request) -> web.Response:
    me = await user(request)
    token = _token(request)
    req = await body(request, DeviceUpdate)
    changes = {k: v for k, v in msgspec.structs.asdict(req).items() if v is not None}
    pool = services(request).pool
    row = (await devices.update(pool, me.user_id, token, changes) if changes
           else await devices.get(pool, me.user_id, token))
    if row is None:
        raise NotFound("Device not found")
    return reply(dict(row))


@routes.delete("/api/v1/me/devices/{token}")
async def delete_device(request: web.Request) -> web.Response:
    me = await user(request)
    if not await devices.delete(services(request).pool, me.user_id, _token(request)):
        raise NotFound("Device not found")
    return web.Response(status=204)
