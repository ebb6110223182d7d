"""Publishing events: each goes only to the inbox streams of nodes holding its users.

Contract: :meth:`Publisher.publish` returns once every routed part is on its
node's stream (XADD, trimmed with approximate MAXLEN), and says which users
were online. It raises on a Redis error; callers keep the outbox row then.
"""

from __future__ import annotations

from typing import Any

import redis.asyncio as aioredis

from ..core import events
from . import keys, presence

INBOX_MAXLEN = 100_000


class Publisher:
    def __init__(self, r: aioredis.Redis, maxlen: int = INBOX_MAXLEN):
        self._r = r
        self._maxlen = maxlen

    async def publish(self, event: dict[str, Any]) -> set[str]:
        """Route ``event`` to the nodes of its users; returns the users found online."""
        routes = await presence.route(self._r, events.users_of(event))
        if not routes:
            return set()
        online: set[str] = set()
        async with self._r.pipeline(transaction=False) as pipe:
            for node, users in routes.items():
                part = events.for_users(event, users)
                if part is None:
                    continue
                online |= users
                pipe.xadd(keys.node_inbox(node), {"e": events.encode(part)},
                          maxlen=self._maxlen, approximate=True)
            await pipe.execute()
        return online
