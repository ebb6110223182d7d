"""One run of a socket scenario: open the sockets, publish the stream, inject the fault, judge.

Sequence: a fresh cluster; ``sockets`` sockets for ``users`` users spread over
the nodes (a user's second and later sockets on other nodes than the first;
every fourth socket authenticates by message); all connected before the first publish; the
stream runs at ``rate`` for a third of ``seconds``, through the scenario's fault,
and for two thirds of ``seconds`` after it; then the sockets get a quiet period (until each holds
every stored seq and nothing arrived for half a second, or 30 s pass); then the
database, the inbox API and the sockets' records give the verdict.
"""

from __future__ import annotations

import asyncio
import time
import uuid
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from pathlib import Path

import aiohttp

from .cluster import Cluster
from .producer import Producer
from .servers import Postgres
from .sockets import COUNTS, Sock, user_token
from .verdict import Figures, judge

QUIET = 0.5  # seconds with no frame that end the settling period
SETTLE = 30.0  # most seconds the sockets get to catch up after the stream


@dataclass
class Size:
    users: int = 150
    sockets: int = 240
    rate: float = 60.0  # publishes per second
    seconds: float = 9.0
    storm: int = 1000  # sockets of the reconnect storm
    pg_outage: float = 10.0
    push_users: int = 60


#: The full form's sizes (``python -m loadtest.chaos``) and the short form's (pytest).
FULL = Size(users=150, sockets=300, rate=60.0, seconds=12.0, storm=1000, pg_outage=10.0,
            push_users=100)
SHORT = Size(users=60, sockets=120, rate=30.0, seconds=3.6, storm=1000, pg_outage=5.0,
             push_users=40)


@dataclass
class Context:
    cluster: Cluster
    size: Size
    sockets: list[Sock] = field(default_factory=list)
    fault_end: float | None = None
    notes: list[str] = field(default_factory=list)


Fault = Callable[[Context], Awaitable[None]]


async def stored_seqs(cluster: Cluster, users: list[str]) -> tuple[dict[str, list[int]],
                                                                   set[str]]:
    """Each user's ACTIVE seqs (ascending), and the messages of every stored notification."""
    conn = await cluster.connect()
    try:
        rows = await conn.fetch(
            "SELECT user_id, seq, message FROM tidings_notifications"
            " WHERE user_id = ANY($1::text[]) AND status = 'ACTIVE' ORDER BY seq", users)
    finally:
        await conn.close()
    by_user: dict[str, list[int]] = {}
    for r in rows:
        by_user.setdefault(r["user_id"], []).append(r["seq"])
    return by_user, {r["message"] for r in rows}


async def final_counts(http: aiohttp.ClientSession, cluster: Cluster,
                       users: list[str]) -> dict[str, tuple[int, ...]]:
    node = cluster.alive()[0]
    out = {}
    for user in users:
        async with http.get(f"{node.url}/api/v1/me/notifications", params={"page_size": "1"},
                            headers={"Authorization": f"Bearer {user_token(user)}"}) as r:
            r.raise_for_status()
            body = await r.json()
        out[user] = tuple(body[k] for k in COUNTS)
    return out


async def settle(cluster: Cluster, socks: list[Sock], users: list[str]) -> None:
    deadline = time.monotonic() + SETTLE
    while time.monotonic() < deadline:
        stored, _ = await stored_seqs(cluster, users)
        done = all(set(stored.get(s.user, ())) <= {q for q, _ in s.received} for s in socks)
        quiet = time.monotonic() - max((s.last_frame for s in socks), default=0.0) > QUIET
        if done and quiet:
            return
        await asyncio.sleep(0.2)


async def run_sockets(folder: Path, pg: Postgres, size: Size, fault: Fault, *,
                      sockets: int | None = None, env: dict[str, str] | None = None) -> Figures:
    cluster = Cluster(folder, pg, env=env)
    socks: list[Sock] = []
    connector = aiohttp.TCPConnector(limit=0)
    async with aiohttp.ClientSession(connector=connector) as http:
        try:
            await cluster.start()
            count = sockets or size.sockets
            users = [f"chaos-{uuid.uuid4().hex[:10]}" for _ in range(min(size.users, count))]
            for i in range(count):
                user = users[i % len(users)]
                home = i % len(users) + i // len(users)  # a user's sockets on different nodes
                socks.append(Sock(user, home, http, cluster.alive, cluster.nodes,
                                  by_message=i % 4 == 3))
            for s in socks:
                s.start()
            async with asyncio.timeout(60):
                await asyncio.gather(*(s.connected.wait() for s in socks))
            ctx = Context(cluster, size, socks)
            producer = Producer(http, cluster.running, users, rate=size.rate)
            stop = asyncio.Event()
            stream = asyncio.create_task(producer.run(stop))
            await asyncio.sleep(size.seconds / 3)
            await fault(ctx)
            await asyncio.sleep(size.seconds * 2 / 3)
            stop.set()
            await stream
            await settle(cluster, socks, users)
            stored, messages = await stored_seqs(cluster, users)
            counts = await final_counts(http, cluster, users)
            figures = judge(
                producer.published, stored, messages,
                [(s.user, [q for q, _ in s.received], s.counts) for s in socks], counts,
                [(s.user, q, t) for s in socks for q, t in s.received], ctx.fault_end)
            figures.resets = sum(s.resets for s in socks)
            twice = [s for s in socks if s.refetched and len(s.received) > len(
                {q for q, _ in s.received})]
            if twice:
                figures.notes.append(f"{len(twice)} socket(s) with duplicates had refetched"
                                     f" {sorted(twice[0].refetched)[:10]}")
            figures.notes += ctx.notes
            figures.notes += cluster.problems()
            return figures
        finally:
            await asyncio.gather(*(s.close() for s in socks))
            await cluster.stop()

