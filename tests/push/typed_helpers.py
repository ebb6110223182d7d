"""Helpers of the tests of declared types at send time (push and e-mail): a clock the
tests move, declaring types, changing preferences, publishing and reading the log."""

from __future__ import annotations

import time
import uuid
from datetime import UTC, datetime, timedelta

from tidings.services.context import SERVICES
from tidings.store import delivery_log

import helpers
from helpers import PRODUCER, user_headers


class Clock:
    """The wall clock moved by ``offset`` (jobs written with the database's now() are due)."""

    def __init__(self) -> None:
        self.offset = 0.0

    def __call__(self) -> float:
        return time.time() + self.offset

    def set(self, at: float) -> None:
        self.offset = at - time.time()


def type_name() -> str:
    return f"comment-{uuid.uuid4().hex[:8]}"


def next_utc(hour: int, minute: int = 0) -> float:
    """The next time the UTC clock reads hour:minute, at least an hour from now."""
    now = datetime.now(UTC) + timedelta(hours=1)
    at = now.replace(hour=hour, minute=minute, second=0, microsecond=0)
    return (at if at > now else at + timedelta(days=1)).timestamp()


async def declare(http, node, name, **definition):
    body = {"title": "Comments", "channels": {"push": True}, **definition}
    async with http.put(f"{node.url}/api/v1/types/{name}", headers=PRODUCER, json=body) as r:
        assert r.status in (200, 201), await r.text()


async def patch_preferences(http, node, user, changes):
    async with http.patch(f"{node.url}/api/v1/me/preferences", headers=user_headers(user),
                          json=changes) as r:
        assert r.status == 200, await r.text()
        return await r.json()


async def publish(http, node, user, kind, message="hello", **extra):
    """Publish of type ``kind`` to ``user`` over HTTP, its push job written; its uid."""
    [n] = (await helpers.publish(http, node, [user], message, type=kind, **extra))[
        "notifications"]
    await node.app[SERVICES].publishing.retired()  # its push job is written
    return n["uid"]


async def details(pool, uid):
    return [(d["outcome"], d["detail"]) for d in await delivery_log.deliveries(pool, uid)
            if d["channel"] != "socket"]
