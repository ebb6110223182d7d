"""The caller's push devices: ``/api/v1/me/devices`` and ``/api/v1/me/devices/{token}``.

Another user's device answers 404, exactly like a token nobody registered, and
so does a path that no platform's token format allows (a NUL, a space). A Web
Push subscription is registered with ``{"platform": "webpush", "subscription":
{"endpoint", "keys": {"p256dh", "auth"}}}``; its ``token`` (the device path's
id) is derived from the endpoint.
"""

from __future__ import annotations

import msgspec
from aiohttp import web

from ..core.errors import NotFound
from ..core.ids import check_device_token, is_device_token
from ..core.requests import DeviceRequest, DeviceUpdate, WebPushDevice
from .http import body, reply, services, user

routes = web.RouteTableDef()


@routes.post("/api/v1/me/devices")
async def register(request: web.Request) -> web.Response:
    me = await user(request)
    req = await body(request, DeviceRequest)
    check_device_token(req.platform, req.token)
    subscription = req.subscription if isinstance(req, WebPushDevice) else None
    row, created = await services(request).devices.register(
        me.user_id, req.platform, req.token, req.app_id, req.name, req.active, subscription)
    return reply(dict(row), 201 if created else 200)


@routes.get("/api/v1/me/devices")
async def list_devices(request: web.Request) -> web.Response:
    me = await user(request)
    rows = await services(request).devices.list_for(me.user_id)
    return reply({"devices": [dict(r) for r in rows]})


def _token(request: web.Request) -> str:
    token = request.match_info["token"]
    if not is_device_token(token):
        raise NotFound("Device not found")
    return token


@routes.get("/api/v1/me/devices/{token}")
async def get_device(request: web.Request) -> web.Response:
    me = await user(request)
    return reply(dict(await services(request).devices.get(me.user_id, _token(request))))


@routes.put("/api/v1/me/devices/{token}")
async def update_device(request: web.Request) -> web.Response:
    me = await user(request)
    token = _token(request)
    req = await body(request, DeviceUpdate)
    changes = {k: v for k, v in msgspec.structs.asdict(req).items() if v is not None}
    return reply(dict(await services(request).devices.update(me.user_id, token, changes)))


@routes.delete("/api/v1/me/devices/{token}")
async def delete_device(request: web.Request) -> web.Response:
    me = await user(request)
    await services(request).devices.delete(me.user_id, _token(request))
    return web.Response(status=204)
