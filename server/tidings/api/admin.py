"""The operator's console: the page at ``/admin`` and the ``/api/v1/admin/...`` endpoints.

Every endpoint takes an admin key (:mod:`.admin_auth`); with no admin key
configured they are all 404, the page too. Actions are written to the audit
log by :class:`~tidings.services.admin.Admin`.
"""

from __future__ import annotations

from aiohttp import web

from ..core import errors, ids
from ..core.admin_schemas import (
    JobIds,
    PageQuery,
    SubscribersQuery,
    TypeSend,
    UserQuery,
    type_publish,
)
from ..core.decoding import convert_query
from ..core.errors import NotFound
from ..core.requests import PublishRequest, check_publish
from ..core.typedefs import is_type_name
from ..services.admin import ADMIN
from .admin_auth import admin, console_enabled
from .demo import STATIC
from .http import body, path_uid, reply

routes = web.RouteTableDef()

_PAGE_HEADERS = {"Cache-Control": "no-cache", "X-Frame-Options": "DENY",
                 "Content-Security-Policy": "default-src 'self'; style-src 'self' 'unsafe-inline';"
                 " script-src 'self' 'unsafe-inline'; frame-ancestors 'none'",
                 "Referrer-Policy": "no-referrer"}


@routes.get("/admin")
async def page(request: web.Request) -> web.FileResponse:
    console_enabled(request)
    return web.FileResponse(STATIC / "admin.html", headers=_PAGE_HEADERS)


@routes.post("/api/v1/admin/notifications")
async def send(request: web.Request) -> web.Response:
    """Publish as a producer would (push now: ``push.when: "always"``), audited."""
    who = admin(request)
    req = await body(request, PublishRequest)
    users = check_publish(req)
    answer = await request.app[ADMIN].send(who, req, users)
    return reply(answer.body, answer.status)


def _type_name(request: web.Request) -> str:
    name = request.match_info["name"]
    if not is_type_name(name):
        raise errors.UNKNOWN_TYPE.error("Notification type not found")
    return name


@routes.get("/api/v1/admin/types")
async def types(request: web.Request) -> web.Response:
    admin(request)
    return reply(await request.app[ADMIN].types())


@routes.post("/api/v1/admin/types/{name}/notifications")
async def send_to_type(request: web.Request) -> web.Response:
    """Publish to every subscriber of a declared type, audited (see the service)."""
    who = admin(request)
    name = _type_name(request)
    req = await body(request, TypeSend)
    check_publish(type_publish(req, name, []))
    answer = await request.app[ADMIN].send_to_type(who, name, req)
    return reply(answer.body, answer.status)


@routes.get("/api/v1/admin/types/{name}/subscribers")
async def subscribers(request: web.Request) -> web.Response:
    admin(request)
    name = _type_name(request)
    q = convert_query(request.query.items(), SubscribersQuery)
    return reply(await request.app[ADMIN].subscribers_of(name, q.cursor, q.limit))


@routes.get("/api/v1/admin/user")
async def user(request: web.Request) -> web.Response:
    admin(request)
    q = convert_query(request.query.items(), UserQuery)
    return reply(await request.app[ADMIN].user(ids.user_id(q.id)))


@routes.get("/api/v1/admin/notifications/{uid}/deliveries")
async def deliveries(request: web.Request) -> web.Response:
    admin(request)
    uid = path_uid(request)
    found = await request.app[ADMIN].deliveries(uid)
    if found is None:
        raise NotFound("Notification not found")
    return reply(found)


@routes.get("/api/v1/admin/dead-letters")
async def dead_letters(request: web.Request) -> web.Response:
    admin(request)
    q = convert_query(request.query.items(), PageQuery)
    return reply(await request.app[ADMIN].dead_letters(q.limit, q.cursor))


@routes.post("/api/v1/admin/dead-letters/requeue")
async def requeue(request: web.Request) -> web.Response:
    who = admin(request)
    req = await body(request, JobIds)
    return reply(await request.app[ADMIN].requeue(who, req.ids))


@routes.post("/api/v1/admin/dead-letters/discard")
async def discard(request: web.Request) -> web.Response:
    who = admin(request)
    req = await body(request, JobIds)
    return reply(await request.app[ADMIN].discard(who, req.ids))


@routes.get("/api/v1/admin/push-apps")
async def push_apps(request: web.Request) -> web.Response:
    admin(request)
    return reply(await request.app[ADMIN].push_apps())


@routes.get("/api/v1/admin/nodes")
async def nodes(request: web.Request) -> web.Response:
    admin(request)
    return reply(await request.app[ADMIN].nodes())


@routes.get("/api/v1/admin/audit")
async def audit(request: web.Request) -> web.Response:
    admin(request)
    q = convert_query(request.query.items(), PageQuery)
    return reply(await request.app[ADMIN].audit_log(q.limit, q.cursor))
