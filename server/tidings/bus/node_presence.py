"""One node's upkeep of its own presence: start, re-register after Redis lost it, stop.

Every function raises :class:`~tidings.core.errors.BusUnavailable` on a Redis
failure. The coalesced joins and leaves of sockets are :class:`.presence.Writer`.
"""

from __future__ import annotations

from collections.abc import Sequence

import redis.asyncio as aioredis

from . import keys
from .errors import bus_edge
from .presence import WRITE_CHUNK, heartbeat, leave


@bus_edge
async def start(r: aioredis.Redis, node_id: str) -> None:
    """A node starts: drop what an earlier life of ``node_id`` left, then beat."""
    await r.delete(keys.node_inbox(node_id), keys.node_users(node_id))
    await heartbeat(r, node_id)


@bus_edge
async def registered(r: aioredis.Redis, node_id: str) -> bool:
    """True if the node's user set exists (Redis did not lose it)."""
    return bool(await r.exists(keys.node_users(node_id)))


@bus_edge
async def register(r: aioredis.Redis, node_id: str, users: Sequence[str]) -> None:
    """Add ``users`` to the node's set (after Redis lost it), ``WRITE_CHUNK`` per SADD."""
    async with r.pipeline(transaction=False) as pipe:
        for i in range(0, len(users), WRITE_CHUNK):
            pipe.sadd(keys.node_users(node_id), *users[i:i + WRITE_CHUNK])
        await pipe.execute()


@bus_edge
async def stop(r: aioredis.Redis, node_id: str) -> None:
    """A node stops: leave presence and drop its inbox stream."""
    await leave(r, node_id)
    await r.delete(keys.node_inbox(node_id))
