"""The operator's console: what the admin endpoints read and do, across users.

Contracts:

- Every action (a send, a requeue, a discard) is written to the audit log
  with the acting admin key's id: a send's row is committed before the
  publish starts (an action that cannot be recorded is not taken: 503), a
  requeue's or discard's in the same transaction as the change. A send the
  publish refuses (a 4xx: an idempotency key's 409) gains ``refused`` (the
  error's code) in its row: it sent nothing.
- A send is an ordinary publish (:class:`~.publishing.Publishing`): same
  rules, same answer; the console's "push now" is ``push.when: "always"``.
- A send to a type's subscribers (:mod:`.subscribers`: who they are) refuses a
  type not declared (404 ``unknown_type``, nothing done, nothing audited);
  otherwise its audit row is committed first, then each page of subscribers is
  one publish carrying the type (so the type's push defaults, preferences and
  templates apply as to any typed publish; a page of more than a publish's
  chunk is streamed). A page that fails when earlier pages are stored ends the
  send with a 202 naming ``resume_after`` (the last subscriber handled;
  sending again with ``after`` set to it reaches the rest, once; except a
  page whose outcome is unknown, ``StoreUnavailable`` after a write in flight,
  which may be stored and is sent again); the first page failing is the
  publish's error. The audit row gains ``recipient_count``
  and ``resume_after`` when the send ends.
- Reads never change anything. A user's lookup holds their counts, latest
  notifications, devices with their last push and last error, the live nodes
  holding their sockets, their effective preferences (the document the user
  reads) and their profile (None without one).
"""

from __future__ import annotations

import logging
import time
import uuid
from collections.abc import Mapping
from datetime import UTC, datetime
from typing import Any

from aiohttp import web

from ..bus import node_stats, presence
from ..bus.connect import Redis
from ..bus.errors import translated as bus_errors
from ..config import Settings
from ..core import errors
from ..core.admin_schemas import TypeSend, type_publish
from ..core.errors import StoreError, TidingsError, Unavailable
from ..core.preferences import effective, parse_choices
from ..core.push_apps import attribute
from ..core.requests import PublishRequest
from ..core.typedefs import TypeDefinition
from ..push.app_info import describe
from ..push.registry import parse_config
from ..store import admin as store
from ..store import db, preferences, profiles
from . import deliveries, subscribers
from .drafting import Answer
from .publishing import Publishing
from .types import Types

log = logging.getLogger(__name__)

LATEST = 20  # notifications shown in a user's lookup
RECIPIENTS_AUDITED = 100  # recipients named in a send's audit row (the count is always there)
RECIPIENTS_SHOWN = 100  # recipients listed in the answer of a send to a type's subscribers
PUSH_WINDOW = 3600.0  # seconds of the delivery log a push app's figures cover


def _iso(unix: float | None) -> str | None:
    return None if unix is None else datetime.fromtimestamp(unix, UTC).isoformat()


def page(items: list[dict[str, Any]], limit: int) -> dict[str, Any]:
    """A page of items with ids, newest first: ``next_before`` continues it (None: the end)."""
    return {"items": items,
            "next_before": items[-1]["id"] if len(items) == limit and items else None}


class Admin:
    def __init__(self, settings: Settings, pool: db.Pool, redis: Redis, publishing: Publishing,
                 types: Types, *, page_rows: int = subscribers.PAGE_ROWS):
        """``page_rows``: known users read per page of a send to a type's subscribers."""
        self._settings = settings
        self._pool = pool
        self._redis = redis
        self._publishing = publishing
        self._types = types
        self._page_rows = page_rows

    # -- actions ----------------------------------------------------------

    async def send(self, admin: str, req: PublishRequest, users: list[str]) -> Answer:
        """Publish ``req`` to ``users`` as ``admin``; the audit row is committed first, and
        gains ``refused`` (the error's code) if the publish refuses the send."""
        audit_id = await store.audit(self._pool, admin, "send",
                          users[0] if len(users) == 1 else f"{len(users)} recipients", {
                              "recipients": users[:RECIPIENTS_AUDITED],
                              "recipient_count": len(users),
                              "title": req.title, "type": req.type,
                              "message": req.message[:200],
                              "push": None if req.push is None else req.push.when,
                              "persist": req.persist, "delay": req.delay})
        try:
            return await self._publishing.publish(req, users)
        except TidingsError as exc:
            if not isinstance(exc, Unavailable):  # refused, so nothing was sent
                await self._outcome(audit_id, {"refused": exc.code})
            raise

    async def _outcome(self, audit_id: int, outcome: dict[str, Any]) -> None:
        """Add ``outcome`` to the audit row of an action already decided (logged if not)."""
        try:
            await store.audit_outcome(self._pool, audit_id, outcome)
        except (Unavailable, StoreError) as exc:  # the action is done: its answer stands
            log.warning("the audit row %d did not get its outcome (%s)", audit_id, exc)

    async def declared(self, name: str) -> Mapping[str, TypeDefinition]:
        """The declared types, ``name`` among them; raises ``NotFound`` (``unknown_type``)
        if it is not declared."""
        if name not in self._types.known:
            await self._types.load()  # declared on another node since the last reload
        known = self._types.known
        if name not in known:
            raise errors.UNKNOWN_TYPE.error("Notification type not found")
        return known

    async def send_to_type(self, admin: str, name: str, req: TypeSend) -> Answer:
        """Publish ``req`` to every subscriber of the type ``name`` as ``admin`` (see the
        module)."""
        known = await self.declared(name)
        audit_id = await store.audit(self._pool, admin, "send", f"subscribers of {name}", {
            "type_subscribers": name, "after": req.after, "title": req.title, "type": name,
            "message": req.message[:200], "push": None if req.push is None else req.push.when})
        created = pending = 0
        shown: list[dict[str, Any]] = []
        handled: str | None = None
        stopped: str | None = None
        try:
            async for users in subscribers.pages(self._pool, known, name, req.after or "",
                                                 self._page_rows):
                answer = await self._publishing.publish(type_publish(req, name, users), users)
                created += answer.body["created"]
                pending += answer.body.get("pending", 0)
                shown += answer.body["notifications"][:RECIPIENTS_SHOWN - len(shown)]
                handled = users[-1]
        except (Unavailable, StoreError) as exc:
            if handled is None:
                raise
            log.warning("a send to the subscribers of %r stopped after %s (%s)", name, handled,
                        exc)
            stopped = handled
        await self._outcome(audit_id, {"recipient_count": created + pending,
                                       "resume_after": stopped})
        return Answer(202 if pending or stopped else 201, {
            "type": name, "recipients": created + pending, "created": created,
            "pending": pending, "notifications": shown, "resume_after": stopped})

    async def requeue(self, admin: str, ids: list[int]) -> dict[str, list[int]]:
        done = await store.requeue(self._pool, admin, ids)
        return {"requeued": done, "not_found": sorted(set(ids) - set(done))}

    async def discard(self, admin: str, ids: list[int]) -> dict[str, list[int]]:
        done = await store.discard(self._pool, admin, ids)
        return {"discarded": done, "not_found": sorted(set(ids) - set(done))}

    # -- reads ------------------------------------------------------------

    async def user(self, user_id: str) -> dict[str, Any]:
        record = await store.user_record(self._pool, user_id, LATEST)
        choices, version = await preferences.get(self._pool, user_id)
        profile = await profiles.get(self._pool, user_id)
        with bus_errors():
            held = await presence.route(self._redis, [user_id])
        return {"user": user_id, **record,
                "sockets": [{"node": node} for node in sorted(held)],
                "preferences": {**effective(self._types.known, parse_choices(choices)),
                                "version": version},
                "profile": None if profile is None else profiles.as_dict(profile)}

    async def subscribers_of(self, name: str, after: str, limit: int) -> dict[str, Any]:
        """A page of the subscribers of the declared type ``name`` (see :mod:`.subscribers`)."""
        known = await self.declared(name)
        return await subscribers.page(self._pool, known, name, after, limit)

    async def types(self) -> dict[str, Any]:
        return {"types": await self._types.list()}

    async def deliveries(self, uid: uuid.UUID) -> dict[str, Any] | None:
        found = await deliveries.of(self._pool, uid)
        if found is None:
            return None
        return {"uid": str(uid), "recipient": found[0], "deliveries": found[1]}

    async def dead_letters(self, limit: int, before: int | None) -> dict[str, Any]:
        return page(await store.dead_letters(self._pool, limit, before), limit)

    async def audit_log(self, limit: int, before: int | None) -> dict[str, Any]:
        return page(await store.audit_log(self._pool, limit, before), limit)

    async def push_apps(self) -> dict[str, Any]:
        apps = describe(parse_config(self._settings.push_config))
        tallies, unconfigured = attribute(
            [a.ref for a in apps], await store.push_outcomes(self._pool, PUSH_WINDOW))
        return {
            "window_seconds": int(PUSH_WINDOW),
            "apps": [{
                "platform": a.ref.platform, "kind": a.kind, "app_id": a.ref.app_id,
                "default": a.ref.default, "concurrency": a.capacity, "config": a.config,
                "credentials_expire_at": _iso(a.expires_at), "problem": a.problem,
                "last_hour": {"sent": t.sent, "errors": t.errors, "outcomes": t.outcomes},
            } for a, t in zip(apps, tallies, strict=True)],
            "unconfigured": {"sent": unconfigured.sent, "errors": unconfigured.errors,
                             "outcomes": unconfigured.outcomes},
        }

    async def nodes(self) -> dict[str, Any]:
        views = await node_stats.read_all(self._redis, time.time())
        return {"nodes": [{
            "node": v.node, "live": v.live, "last_heartbeat": _iso(v.heartbeat),
            "sockets": v.figures and v.figures.sockets,
            "users": v.figures and v.figures.users,
            "deliveries_per_second": v.figures and v.figures.per_second,
            "deliveries_total": v.figures and v.figures.delivered,
            "started_at": _iso(v.figures and v.figures.started),
            "stats_at": _iso(v.figures and v.figures.at),
        } for v in views]}


#: Where the node's composition root puts its :class:`Admin`.
ADMIN: web.AppKey[Admin] = web.AppKey("admin", Admin)
