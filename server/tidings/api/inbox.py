"""The caller's inbox: ``/api/v1/me/notifications`` (list, actions) and one notification."""

from __future__ import annotations

from aiohttp import web

from ..core.decoding import convert_query
from ..core.replies import REMOVED, inbox_page, notification_dict
from ..core.requests import DetailPatch, ListQuery, PatchRequest
from .http import body, path_uid, reply, services, user

routes = web.RouteTableDef()


@routes.get("/api/v1/me/notifications")
async def list_notifications(request: web.Request) -> web.Response:
    me = await user(request)
    q = convert_query(request.query.items(), ListQuery)
    counts, rows, next_before = await services(request).inbox.page(me.user_id, q)
    return reply(inbox_page(counts, rows, page=q.page, page_size=q.page_size,
                            next_before=next_before))


@routes.patch("/api/v1/me/notifications")
async def act(request: web.Request) -> web.Response:
    me = await user(request)
    req = await body(request, PatchRequest)
    changed, counts = await services(request).inbox.act(
        me.user_id, req.action_choice, req.notification_uids)
    return reply({"updated": changed, **counts.as_dict()})


@routes.get("/api/v1/me/notifications/{uid}")
async def get_one(request: web.Request) -> web.Response:
    me = await user(request)
    found = await services(request).inbox.one(me.user_id, path_uid(request))
    return reply(notification_dict(found))


@routes.patch("/api/v1/me/notifications/{uid}")
async def patch_one(request: web.Request) -> web.Response:
    me = await user(request)
    uid = path_uid(request)
    req = await body(request, DetailPatch)
    s = services(request)
    await s.inbox.one(me.user_id, uid)  # NotFound unless it is the caller's
    if req.is_read:
        await s.inbox.act(me.user_id, "MARK_AS_READ", [uid])
    if req.status == REMOVED:
        await s.inbox.act(me.user_id, "MARK_AS_REMOVED", [uid])
        return reply({"uid": str(uid), "status": REMOVED})
    # NotFound if another request removed it meanwhile
    return reply(notification_dict(await s.inbox.one(me.user_id, uid)))
