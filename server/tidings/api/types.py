"""Notification types (producer key): ``/api/v1/types`` and ``/api/v1/types/{name}``.

A name that no type could have (see :data:`tidings.core.typedefs.TYPE_NAME_PATTERN`)
answers 404 on GET and DELETE, and 400 ``invalid_type_name`` on PUT.
"""

from __future__ import annotations

from aiohttp import web

from ..core.errors import NotFound
from ..core.typedefs import TypeDefinition, check_name, is_type_name
from .http import body, producer, reply, services

routes = web.RouteTableDef()


@routes.get("/api/v1/types")
async def list_types(request: web.Request) -> web.Response:
    producer(request)
    return reply({"types": await services(request).types.list()})


@routes.put("/api/v1/types/{name}")
async def put_type(request: web.Request) -> web.Response:
    producer(request)
    name = check_name(request.match_info["name"])
    definition = await body(request, TypeDefinition)
    doc, created = await services(request).types.put(name, definition)
    return reply(doc, 201 if created else 200)


def _name(request: web.Request) -> str:
    name = request.match_info["name"]
    if not is_type_name(name):
        raise NotFound("Notification type not found")
    return name


@routes.get("/api/v1/types/{name}")
async def get_type(request: web.Request) -> web.Response:
    producer(request)
    return reply(await services(request).types.get(_name(request)))


@routes.delete("/api/v1/types/{name}")
async def delete_type(request: web.Request) -> web.Response:
    producer(request)
    await services(request).types.delete(_name(request))
    return web.Response(status=204)
