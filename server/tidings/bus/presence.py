"""Presence: which live nodes hold sockets of which users.

Each node keeps a set of its users (``keys.node_users``) and a heartbeat score
in ``keys.NODES``. A node whose heartbeat is older than ``LIVENESS`` seconds is
not routed to, and :func:`reap` deletes what it left. Lookups cost one
SMISMEMBER per live node, whatever the number of users.
"""

from __future__ import annotations

import time
from collections.abc import Sequence

import redis.asyncio as aioredis

from . import keys

HEARTBEAT = 2.0
LIVENESS = 10.0


async def heartbeat(r: aioredis.Redis, node_id: str, now: float | None = None) -> None:
    await r.zadd(keys.NODES, {node_id: time.time() if now is None else now})


async def live_nodes(r: aioredis.Redis, now: float | None = None) -> list[str]:
    now = time.time() if now is None else now
    nodes = await r.zrangebyscore(keys.NODES, now - LIVENESS, "+inf")
    return [n.decode() if isinstance(n, bytes) else n for n in nodes]


async def add(r: aioredis.Redis, node_id: str, user_id: str) -> None:
    await r.sadd(keys.node_users(node_id), user_id)


async def remove(r: aioredis.Redis, node_id: str, user_id: str) -> None:
    await r.srem(keys.node_users(node_id), user_id)


async def route(r: aioredis.Redis, users: Sequence[str]) -> dict[str, set[str]]:
    """Live node id -> those of ``users`` with a socket there."""
    if not users:
        return {}
    nodes = await live_nodes(r)
    if not nodes:
        return {}
    async with r.pipeline(transaction=False) as pipe:
        for node in nodes:
            pipe.smismember(keys.node_users(node), list(users))
        answers = await pipe.execute()
    routes: dict[str, set[str]] = {}
    for node, flags in zip(nodes, answers, strict=True):
        held = {u for u, present in zip(users, flags, strict=True) if present}
        if held:
            routes[node] = held
    return routes


async def online(r: aioredis.Redis, users: Sequence[str]) -> set[str]:
    """The users among ``users`` with a socket on any live node."""
    found: set[str] = set()
    for held in (await route(r, users)).values():
        found |= held
    return found


async def leave(r: aioredis.Redis, node_id: str) -> None:
    """Remove a node's presence (graceful shutdown)."""
    async with r.pipeline(transaction=False) as pipe:
        pipe.zrem(keys.NODES, node_id)
        pipe.delete(keys.node_users(node_id))
        await pipe.execute()


async def reap(r: aioredis.Redis, now: float | None = None) -> list[str]:
    """Delete presence and inbox of nodes silent for ``LIVENESS`` seconds; returns their ids."""
    now = time.time() if now is None else now
    dead = [n.decode() if isinstance(n, bytes) else n
            for n in await r.zrangebyscore(keys.NODES, "-inf", now - LIVENESS)]
    for node in dead:
        async with r.pipeline(transaction=False) as pipe:
            pipe.zrem(keys.NODES, node)
            pipe.delete(keys.node_users(node), keys.node_inbox(node))
            await pipe.execute()
    return dead
