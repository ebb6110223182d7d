"""The caller's inbox: ``/api/v1/me/notifications`` (list, actions) and one notification."""

from __future__ import annotations

import uuid

from aiohttp import web

from ..core.decoding import convert_query
from ..core.errors import NotFound
from ..core.schemas import DetailPatch, ListQuery, PatchRequest
from ..core.shapes import inbox_page, notification_dict
from ..store import inbox
from .http import body, reply, services, user

routes = web.RouteTableDef()


@routes.get("/api/v1/me/notifications")
async def list_notifications(request: web.Request) -> web.Response:
    me = await user(request)
    q = convert_query(request.query.items(), ListQuery)
    pool = services(request).pool
    counts = await inbox.counts(pool, me.user_id)
    is_read = q.read_filter
    matching = {None: counts.total, True: counts.read, False: counts.unread}[is_read]
    before = q.cursor
    offset = 0 if before is not None else (q.page - 1) * q.page_size
    if before is None and q.page > 1 and offset >= matching:
        raise NotFound("Invalid page.", code="invalid_page")
    rows = await inbox.page(pool, me.user_id, limit=q.page_size, offset=offset,
                            is_read=is_read, before=before)
    more = len(rows) == q.page_size and (before is not None or offset + len(rows) < matching)
    return reply(inbox_page(
        counts, rows, page=q.page, page_size=q.page_size,
        next_before=rows[-1]["seq"] if more else None,
    ))


@routes.patch("/api/v1/me/notifications")
async def act(request: web.Request) -> web.Response:
    me = await user(request)
    req = await body(request, PatchRequest)
    changed, counts = await services(request).inbox.act(
        me.user_id, req.action_choice, req.notification_uids)
    return reply({"updated": changed, **counts.as_dict()})


def _uid(request: web.Request) -> uuid.UUID:
    try:
        return uuid.UUID(request.match_info["uid"])
    except ValueError:
        raise NotFound("Notification not found") from None


@routes.get("/api/v1/me/notifications/{uid}")
async def get_one(request: web.Request) -> web.Response:
    me = await user(request)
    row = await inbox.one(services(request).pool, me.user_id, _uid(request))
    if row is None:
        raise NotFound("Notification not found")
    return reply(notification_dict(row))


@routes.patch("/api/v1/me/notifications/{uid}")
async def patch_one(request: web.Request) -> web.Response:
    me = await user(request)
    uid = _uid(request)
    req = await body(request, DetailPatch)
    s = services(request)
    if await inbox.one(s.pool, me.user_id, uid) is None:
        raise NotFound("Notification not found")
    if req.is_read:
        await s.inbox.act(me.user_id, "MARK_AS_READ", [uid])
    if req.status == "REMOVED":
        await s.inbox.act(me.user_id, "MARK_AS_REMOVED", [uid])
        return reply({"uid": str(uid), "status": "REMOVED"})
    row = await inbox.one(s.pool, me.user_id, uid)
    if row is None:  # removed meanwhile by another request
        raise NotFound("Notification not found")
    return reply(notification_dict(row))
