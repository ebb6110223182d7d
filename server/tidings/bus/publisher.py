"""Publishing events: each goes only to the inbox streams of nodes holding its users.

Contract: :meth:`Publisher.publish` returns once every routed part of its
events is on its node's stream (XADD, trimmed with approximate MAXLEN), each
node's parts in the order of the events, and says which users were online.
It raises :class:`~tidings.core.errors.BusUnavailable` on any Redis error (the
events may be partly on the bus then); callers keep the outbox rows.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import redis.asyncio as aioredis

from ..core import events
from . import keys, presence
from .errors import bus_edge

INBOX_MAXLEN = 100_000


class Publisher:
    def __init__(self, r: aioredis.Redis, maxlen: int = INBOX_MAXLEN):
        self._r = r
        self._maxlen = maxlen

    @bus_edge
    async def ping(self) -> None:
        """Raises :class:`~tidings.core.errors.BusUnavailable` unless Redis answers."""
        await self._r.ping()

    @bus_edge
    async def publish(self, evs: Sequence[dict[str, Any]]) -> set[str]:
        """Route ``evs`` to the nodes of their users, in order; returns the users found online.

        One presence lookup for all their users and one pipelined round trip of XADDs.
        """
        routes = await presence.route(
            self._r, list(dict.fromkeys(u for e in evs for u in events.users_of(e))))
        if not routes:
            return set()
        online: set[str] = set()
        async with self._r.pipeline(transaction=False) as pipe:
            for node, users in routes.items():
                online |= users
                stream = keys.node_inbox(node)
                for event in evs:
                    part = events.for_users(event, users)
                    if part is not None:
                        pipe.xadd(stream, {keys.INBOX_EVENT: events.encode(part)},
                                  maxlen=self._maxlen, approximate=True)
            await pipe.execute()
        return online
