"""Presence: which live nodes hold sockets of which users.

Each node keeps a set of its users (``keys.node_users``) and a heartbeat score
in ``keys.NODES``. A node whose heartbeat is older than ``LIVENESS`` seconds is
not routed to, and :func:`reap` deletes what it left. Lookups cost one
SMISMEMBER per live node, whatever the number of users.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import Callable, Sequence

import redis.asyncio as aioredis

from . import keys
from .errors import bus_edge

log = logging.getLogger(__name__)

HEARTBEAT = 2.0
LIVENESS = 10.0
#: Most members written by one SADD or SREM of :class:`Writer`.
WRITE_CHUNK = 1000


async def heartbeat(r: aioredis.Redis, node_id: str, now: float | None = None) -> None:
    await r.zadd(keys.NODES, {node_id: time.time() if now is None else now})


async def live_nodes(r: aioredis.Redis, now: float | None = None) -> list[str]:
    now = time.time() if now is None else now
    nodes = await r.zrangebyscore(keys.NODES, now - LIVENESS, "+inf")
    return [n.decode() if isinstance(n, bytes) else n for n in nodes]


async def add(r: aioredis.Redis, node_id: str, user_id: str) -> None:
    await r.sadd(keys.node_users(node_id), user_id)


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


class Writer:
    """One node's presence writes, coalesced: joins and leaves of a moment share a round trip.

    A burst of connects (a node restart sends every client back at once) would
    otherwise issue one SADD per socket and exhaust the Redis connection pool.
    :meth:`changed` marks a user whose presence may have changed; one writer
    task at a time then writes the node's current truth for every marked user
    (``here(user)``: SADD if the node holds a socket of theirs, else SREM) and
    resolves the future returned for that batch (failed with
    :class:`~tidings.core.errors.BusUnavailable` if Redis failed). Because the truth is read when
    the batch is written, a join and a leave of one user in the same moment
    cannot leave a stale member behind, whatever their order.
    """

    def __init__(self, r: aioredis.Redis, node_id: str, here: Callable[[str], bool]):
        self._r = r
        self._key = keys.node_users(node_id)
        self._here = here
        self._dirty: set[str] = set()
        self._batch: asyncio.Future[None] | None = None
        self._writing: set[str] = set()
        self._written: asyncio.Future[None] | None = None
        self._task: asyncio.Task[None] | None = None

    def changed(self, user_id: str) -> asyncio.Future[None]:
        """Mark ``user_id``; the future resolves once its presence is written (or fails)."""
        self._dirty.add(user_id)
        if self._batch is None:
            self._batch = asyncio.get_running_loop().create_future()
        batch = self._batch
        if self._task is None:
            self._task = asyncio.create_task(self._run())
        return batch

    def pending(self, user_id: str) -> asyncio.Future[None] | None:
        """The future of the write that covers ``user_id``, if one is waiting or running."""
        if user_id in self._dirty:
            return self._batch
        if user_id in self._writing:
            return self._written
        return None

    async def _run(self) -> None:
        try:
            while self._dirty:
                await asyncio.sleep(0)  # let the joins of this moment gather
                users, batch = self._dirty, self._batch
                self._dirty, self._batch = set(), None
                self._writing, self._written = users, batch
                assert batch is not None
                try:
                    await self._write(users)
                except Exception as exc:  # Redis down: joiners see it (and say it)
                    batch.set_exception(exc)
                    batch.exception()  # retrieved: leaves nobody waits for must not warn
                    log.debug("presence write of %d users failed: %s", len(users), exc)
                else:
                    batch.set_result(None)
                finally:
                    self._writing, self._written = set(), None
        finally:
            self._task = None

    @bus_edge
    async def _write(self, users: set[str]) -> None:
        add = [u for u in users if self._here(u)]
        rem = [u for u in users if not self._here(u)]
        async with self._r.pipeline(transaction=False) as pipe:
            for i in range(0, len(rem), WRITE_CHUNK):
                pipe.srem(self._key, *rem[i:i + WRITE_CHUNK])
            for i in range(0, len(add), WRITE_CHUNK):
                pipe.sadd(self._key, *add[i:i + WRITE_CHUNK])
            await pipe.execute()

    async def close(self) -> None:
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
