"""Nodes' figures in Redis, for the operator's console: each node writes its own, anyone reads all.

Each node rewrites a small hash (``keys.node_stats``) with every stats beat:
its open sockets, the users they belong to, the notifications delivered to
those sockets (a running total) and the rate of the last interval. The hash
expires ``STATS_TTL`` seconds after the last write, so a node that died
leaves nothing behind for long. Liveness itself is the presence heartbeat
(``keys.NODES``): :func:`read_all` lists every node there with its last
heartbeat and whatever figures it wrote. Every function raises
:class:`~tidings.core.errors.BusUnavailable` on a Redis failure.
"""

from __future__ import annotations

from dataclasses import dataclass

import redis.asyncio as aioredis

from . import keys
from .errors import bus_edge
from .presence import LIVENESS

STATS_TTL = 30  # seconds a node's figures outlive its last write


@dataclass(frozen=True, slots=True)
class Figures:
    """What one node says of itself."""

    sockets: int
    users: int
    delivered: int  # notifications delivered to its sockets since it started
    per_second: float  # deliveries per second over the last interval
    at: float  # unix time written
    started: float  # unix time the node started


@dataclass(frozen=True, slots=True)
class NodeView:
    node: str
    heartbeat: float  # unix time of its last presence heartbeat
    live: bool  # heartbeat within presence's liveness window
    figures: Figures | None  # None: it wrote none (yet, or they expired)


@bus_edge
async def write(r: aioredis.Redis, node_id: str, f: Figures) -> None:
    key = keys.node_stats(node_id)
    async with r.pipeline(transaction=False) as pipe:
        pipe.hset(key, mapping={"sockets": f.sockets, "users": f.users,
                                "delivered": f.delivered, "per_second": f.per_second,
                                "at": f.at, "started": f.started})
        pipe.expire(key, STATS_TTL)
        await pipe.execute()


@bus_edge
async def forget(r: aioredis.Redis, node_id: str) -> None:
    """A node stops: its figures go with it."""
    await r.delete(keys.node_stats(node_id))


def _figures(raw: dict[bytes, bytes]) -> Figures | None:
    try:
        return Figures(int(raw[b"sockets"]), int(raw[b"users"]), int(raw[b"delivered"]),
                       float(raw[b"per_second"]), float(raw[b"at"]), float(raw[b"started"]))
    except (KeyError, ValueError):
        return None


@bus_edge
async def read_all(r: aioredis.Redis, now: float) -> list[NodeView]:
    """Every node in presence (live or not yet reaped), newest heartbeat first."""
    beats = await r.zrange(keys.NODES, 0, -1, withscores=True, desc=True)
    nodes = [(n.decode() if isinstance(n, bytes) else n, float(score)) for n, score in beats]
    if not nodes:
        return []
    async with r.pipeline(transaction=False) as pipe:
        for node, _ in nodes:
            pipe.hgetall(keys.node_stats(node))
        found = await pipe.execute()
    return [NodeView(node, beat, beat >= now - LIVENESS, _figures(raw))
            for (node, beat), raw in zip(nodes, found, strict=True)]
