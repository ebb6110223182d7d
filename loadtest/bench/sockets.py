"""The subscriber side of the driver: sockets that check what they receive, and crowds of them.

A :class:`Sub` is one user's socket. As messages arrive it checks each seq against
the last one (a duplicate or a gap is counted, never silently dropped) and records
into the shared :class:`Tally` the latency of each notification (its ``data.t`` is
the ``time.monotonic()`` it was due to be published at; CLOCK_MONOTONIC is one clock
for every process of the machine, so holders in other processes compare against the
same clock) and, while tags are tracked, the arrival time per tag. :func:`check` turns
the sockets' counters into the correctness figures every scenario reports. A
:class:`Crowd` connects many sockets over several loopback source addresses.
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import Iterable
from typing import Any

import aiohttp
import orjson

from .targets import Endpoint


class Tally:
    """What all sockets of one process received: latencies and per-tag arrival times."""

    def __init__(self) -> None:
        self.latencies: list[float] = []
        self.by_tag: dict[str, list[float]] = {}
        self.track_tags = False
        self.received = 0
        self._watch: tuple[str, int, asyncio.Event] | None = None

    def reset(self) -> None:
        self.latencies = []
        self.by_tag = {}

    def arrived(self, tag: str, now: float) -> None:
        arrivals = self.by_tag.setdefault(tag, [])
        arrivals.append(now)
        w = self._watch
        if w is not None and w[0] == tag and len(arrivals) >= w[1]:
            w[2].set()

    async def wait_tag(self, tag: str, count: int, within: float) -> int:
        """Wait until ``count`` sockets have the notification tagged ``tag`` (or ``within``
        s pass); returns how many have it."""
        if len(self.by_tag.get(tag, ())) < count:
            event = asyncio.Event()
            self._watch = (tag, count, event)
            try:
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(event.wait(), within)
            finally:
                self._watch = None
        return len(self.by_tag.get(tag, ()))


class Sub:
    """One socket of one user; checks seq order and duplicates as messages arrive."""

    __slots__ = ("closed", "closes", "dups", "expected", "gaps", "last_seq", "ready", "received",
                 "resets", "tally", "task", "user", "ws")

    def __init__(self, user: str, tally: Tally):
        self.user = user
        self.tally = tally
        self.ws: aiohttp.ClientWebSocketResponse | None = None
        self.task: asyncio.Task[None] | None = None
        self.ready = asyncio.Event()
        self.last_seq = 0  # users are fresh: seqs start at 1
        self.expected = 0  # highest seq published to this user
        self.received = 0
        self.dups = 0
        self.gaps = 0
        self.resets = 0
        self.closes = 0
        self.closed: int | None = None

    async def connect(self, session: aiohttp.ClientSession, url: str, token: str,
                      since: int | None = None, greets: bool = True) -> None:
        """Open the socket; ``ready`` is set by the server's greeting, or at once if
        the server sends none."""
        self.ready = asyncio.Event()
        full = url if since is None else f"{url}?since={since}"
        headers = {"Authorization": f"Bearer {token}"} if token else {}
        self.ws = await session.ws_connect(full, headers=headers,
                                           autoping=True, heartbeat=None, max_msg_size=0,
                                           compress=0)
        self.task = asyncio.create_task(self._read(self.ws))
        if not greets:
            self.ready.set()

    async def _read(self, ws: aiohttp.ClientWebSocketResponse) -> None:
        tally = self.tally
        async for msg in ws:
            if msg.type not in (aiohttp.WSMsgType.TEXT, aiohttp.WSMsgType.BINARY):
                continue  # nchan sends its messages as binary frames
            now = time.monotonic()
            m = orjson.loads(msg.data)
            kind = m.get("type")
            if kind == "notification":
                n = m["notification"]
                seq = n["seq"]
                if seq is not None:
                    if seq <= self.last_seq:
                        self.dups += 1
                        continue
                    if seq != self.last_seq + 1:
                        self.gaps += 1
                    self.last_seq = seq
                self.received += 1
                tally.received += 1
                data = n["data"]
                if data:
                    tally.latencies.append(now - data["t"])
                    if tally.track_tags:
                        tally.arrived(data["k"], now)
            elif kind == "counts":
                self.ready.set()
            elif kind == "reset":
                self.resets += 1
                self.last_seq = m.get("seq", self.last_seq)
        self.closed = ws.close_code
        self.closes += 1

    async def close(self) -> None:
        if self.ws is not None:
            await self.ws.close()
        if self.task is not None:
            with contextlib.suppress(Exception):
                await self.task


def check(subs: Iterable[Sub]) -> dict[str, Any]:
    """Correctness over the given sockets: nothing missed, nothing twice, order kept."""
    subs = list(subs)
    missed = sum(max(0, s.expected - s.last_seq) for s in subs)
    extra = sum(max(0, s.last_seq - s.expected) for s in subs)
    return {"expected": sum(s.expected for s in subs), "received": sum(s.received for s in subs),
            "missed": missed, "unexpected": extra, "duplicates": sum(s.dups for s in subs),
            "order_ok": all(s.gaps == 0 for s in subs), "gaps": sum(s.gaps for s in subs),
            "resets": sum(s.resets for s in subs)}


def merge_checks(checks: list[dict[str, Any]]) -> dict[str, Any]:
    """The correctness figures of several processes' sockets as one."""
    out: dict[str, Any] = {"order_ok": all(c["order_ok"] for c in checks)}
    for key in ("expected", "received", "missed", "unexpected", "duplicates", "gaps", "resets"):
        out[key] = sum(c.get(key, 0) for c in checks)
    return out


def users(prefix: str, n: int, first: int = 0) -> list[str]:
    return [f"{prefix}-{i}" for i in range(first, first + n)]


async def drain(subs: list[Sub], limit: float) -> float:
    """Wait until every socket has its expected seq (or ``limit`` s); returns the wait."""
    t0 = time.monotonic()
    while time.monotonic() - t0 < limit:
        if all(s.last_seq >= s.expected for s in subs):
            break
        await asyncio.sleep(0.02)
    return time.monotonic() - t0


class Crowd:
    """Many subscribers over several loopback source addresses (127.0.0.1, .2, ...)."""

    def __init__(self, endpoint: Endpoint, tally: Tally, sources: int, per_source: int,
                 first_source: int = 0):
        self.endpoint = endpoint
        self.tally = tally
        self.first_source = first_source
        self.sessions: list[aiohttp.ClientSession] = []
        self.subs: list[Sub] = []
        self.sources = sources
        self.per_source = per_source
        self.connect_errors = 0
        self.connect_times: list[float] = []

    def session_for(self, i: int) -> aiohttp.ClientSession:
        idx = min(i // self.per_source, self.sources - 1)
        while len(self.sessions) <= idx:
            n = self.first_source + len(self.sessions)
            host = "127.0.0.1" if n == 0 else f"127.0.0.{n + 1}"
            conn = aiohttp.TCPConnector(limit=0, local_addr=(host, 0), force_close=False)
            self.sessions.append(aiohttp.ClientSession(connector=conn))
        return self.sessions[idx]

    async def connect(self, names: list[str], concurrency: int) -> list[Sub]:
        sem = asyncio.Semaphore(concurrency)
        new = [Sub(u, self.tally) for u in names]
        base = len(self.subs)
        ep = self.endpoint

        async def one(i: int, sub: Sub) -> None:
            async with sem:
                t0 = time.monotonic()
                for attempt in range(3):
                    try:
                        await sub.connect(self.session_for(base + i), ep.url_for(sub.user),
                                          ep.token(sub.user), greets=ep.greets)
                        await asyncio.wait_for(sub.ready.wait(), 30)
                        self.connect_times.append(time.monotonic() - t0)
                        return
                    except (aiohttp.ClientError, OSError, TimeoutError):
                        if attempt == 2:
                            self.connect_errors += 1
                        await asyncio.sleep(0.2)

        await asyncio.gather(*(one(i, s) for i, s in enumerate(new)))
        self.subs += new
        return new

    def open_count(self) -> int:
        return sum(1 for s in self.subs if s.ws is not None and not s.ws.closed)

    async def close(self) -> None:
        sem = asyncio.Semaphore(1000)

        async def one(sub: Sub) -> None:
            async with sem:
                with contextlib.suppress(Exception):
                    await sub.close()

        await asyncio.gather(*(one(s) for s in self.subs))
        self.subs = []
        for s in self.sessions:
            await s.close()
        self.sessions = []
