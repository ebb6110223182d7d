"""The operator's console: what the admin endpoints read and do, across users.

Contracts:

- Every action (a send, a requeue, a discard) is written to the audit log
  with the acting admin key's id: a send's row is committed before the
  publish starts (an action that cannot be recorded is not taken: 503), a
  requeue's or discard's in the same transaction as the change.
- A send is an ordinary publish (:class:`~.publishing.Publishing`): same
  rules, same answer; the console's "push now" is ``push.when: "always"``.
- Reads never change anything. A user's lookup is what exists today
  (counts, latest notifications, devices with their last push and last error,
  the live nodes holding their sockets); preferences and the profile join it
  when those exist.
"""

from __future__ import annotations

import time
import uuid
from datetime import UTC, datetime
from typing import Any

from aiohttp import web

from ..bus import node_stats, presence
from ..bus.connect import Redis
from ..bus.errors import translated as bus_errors
from ..config import Settings
from ..core.push_apps import attribute
from ..core.schemas import PublishRequest
from ..push.app_info import describe
from ..push.registry import parse_config
from ..store import admin as store
from ..store import db
from . import deliveries
from .drafting import Answer
from .publishing import Publishing

LATEST = 20  # notifications shown in a user's lookup
RECIPIENTS_AUDITED = 100  # recipients named in a send's audit row (the count is always there)
PUSH_WINDOW = 3600.0  # seconds of the delivery log a push app's figures cover


def _iso(unix: float | None) -> str | None:
    return None if unix is None else datetime.fromtimestamp(unix, UTC).isoformat()


def page(items: list[dict[str, Any]], limit: int) -> dict[str, Any]:
    """A page of items with ids, newest first: ``next_before`` continues it (None: the end)."""
    return {"items": items,
            "next_before": items[-1]["id"] if len(items) == limit and items else None}


class Admin:
    def __init__(self, settings: Settings, pool: db.Pool, redis: Redis, publishing: Publishing):
        self._settings = settings
        self._pool = pool
        self._redis = redis
        self._publishing = publishing

    # -- actions ----------------------------------------------------------

    async def send(self, admin: str, req: PublishRequest, users: list[str]) -> Answer:
        """Publish ``req`` to ``users`` as ``admin``; the audit row is committed first."""
        await store.audit(self._pool, admin, "send",
                          users[0] if len(users) == 1 else f"{len(users)} recipients", {
                              "recipients": users[:RECIPIENTS_AUDITED],
                              "recipient_count": len(users),
                              "title": req.title, "type": req.type,
                              "message": req.message[:200],
                              "push": None if req.push is None else req.push.when,
                              "persist": req.persist, "delay": req.delay})
        return await self._publishing.publish(req, users)

    async def requeue(self, admin: str, ids: list[int]) -> dict[str, list[int]]:
        done = await store.requeue(self._pool, admin, ids)
        return {"requeued": done, "not_found": sorted(set(ids) - set(done))}

    async def discard(self, admin: str, ids: list[int]) -> dict[str, list[int]]:
        done = await store.discard(self._pool, admin, ids)
        return {"discarded": done, "not_found": sorted(set(ids) - set(done))}

    # -- reads ------------------------------------------------------------

    async def user(self, user_id: str) -> dict[str, Any]:
        record = await store.user_record(self._pool, user_id, LATEST)
        with bus_errors():
            held = await presence.route(self._redis, [user_id])
        # Preferences and the profile (issue 13) are added to this answer where they are built.
        return {"user": user_id, **record,
                "sockets": [{"node": node} for node in sorted(held)]}

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
