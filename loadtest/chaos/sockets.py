"""The driver's sockets: each one records every seq it is given, and comes back after a drop.

A :class:`Sock` holds one user's WebSocket on its home node. When the socket
closes for any reason it reconnects (after a short random wait) to its home
node if that node is alive, else to another live one, resuming with
``?since=<last seq>`` (or the auth message's ``since``, for the sockets that
authenticate by message). A ``reset`` frame is answered by refetching the missed
notifications through the inbox API. Everything received is kept as
``(seq, time)`` in arrival order, with the last counts each socket was told, so
the verdict can be computed afterwards from facts, not from this class's view.
"""

from __future__ import annotations

import asyncio
import random
import socket
import time
from collections.abc import Callable
from typing import Any

import aiohttp
import jwt
import orjson

from .cluster import JWT_SECRET
from .servers import Proc

PATH = "/ws/me/notifications"
COUNTS = ("total_notifications", "read_notifications", "unread_notifications")


def user_token(user: str, ttl: int = 3600) -> str:
    now = int(time.time())
    return jwt.encode({"sub": user, "iat": now, "exp": now + ttl}, JWT_SECRET, algorithm="HS256")


class Sock:
    def __init__(self, user: str, home: int, http: aiohttp.ClientSession,
                 nodes: Callable[[], list[Proc]], all_nodes: list[Proc], *,
                 by_message: bool = False):
        self.user = user
        self.home = home
        self.http = http
        self.nodes = nodes  # the nodes alive now
        self.all_nodes = all_nodes
        self.by_message = by_message
        self.token = user_token(user)
        self.received: list[tuple[int, float]] = []  # (seq, arrival), socket and refetch
        self.refetched: set[int] = set()  # seqs that came through the inbox API
        self.last = 0
        self.counts: tuple[int, int, int] | None = None
        self.resets = 0
        self.connects = 0
        self.last_frame = 0.0
        self.connected = asyncio.Event()
        self.node: Proc | None = None
        self._ws: aiohttp.ClientWebSocketResponse | None = None
        self._stop = False
        self._task: asyncio.Task[None] | None = None
        self.backoff = 0.3
        self.hold_until = 0.0  # no reconnect before this time.monotonic() (a partition)

    def start(self) -> None:
        self._task = asyncio.create_task(self._run())

    def _pick(self) -> Proc | None:
        home = self.all_nodes[self.home % len(self.all_nodes)]
        alive = self.nodes()
        if home in alive:
            return home
        return random.choice(alive) if alive else None

    async def _run(self) -> None:
        failures = 0
        while not self._stop:
            node = self._pick()
            if node is not None:
                try:
                    await self._session(node)
                    failures = 0
                except (aiohttp.ClientError, OSError, TimeoutError):
                    failures += 1
            self.connected.clear()
            self._ws = None
            if self._stop:
                return
            cap = min(2.0, self.backoff * 2 ** min(failures, 4))
            await asyncio.sleep(max(random.uniform(0.01, cap), self.hold_until - time.monotonic()))

    async def _session(self, node: Proc) -> None:
        url = node.url.replace("http://", "ws://") + PATH
        headers, params = {}, {}
        if not self.by_message:
            headers["Authorization"] = f"Bearer {self.token}"
            params["since"] = str(self.last)
        async with self.http.ws_connect(url, headers=headers, params=params, heartbeat=None,
                                        timeout=aiohttp.ClientWSTimeout(ws_close=2),
                                        max_msg_size=1 << 22) as ws:
            self._ws = ws
            self.node = node
            if self.by_message:
                await ws.send_str(orjson.dumps(
                    {"type": "auth", "token": self.token, "since": self.last}).decode())
            self.connects += 1
            async for msg in ws:
                if msg.type != aiohttp.WSMsgType.TEXT:
                    break
                await self._frame(orjson.loads(msg.data))

    async def _frame(self, frame: dict[str, Any]) -> None:
        now = time.monotonic()
        self.last_frame = now
        kind = frame.get("type")
        if kind in ("counts", "notification"):
            self.connected.set()
            if all(k in frame for k in COUNTS):
                self.counts = tuple(frame[k] for k in COUNTS)  # type: ignore[assignment]
        if kind == "notification":
            seq = frame["notification"]["seq"]
            if seq is not None:
                self.received.append((seq, now))
                self.last = max(self.last, seq)
        elif kind == "reset":
            self.resets += 1
            await self._refetch(frame["seq"])

    async def _refetch(self, upto: int) -> None:
        """Fetch seqs ``last+1 .. upto`` from the inbox API (newest first, by ``before``)."""
        assert self.node is not None
        got: list[int] = []
        before = upto + 1
        while before - 1 > self.last:
            async with self.http.get(
                    f"{self.node.url}/api/v1/me/notifications",
                    params={"before": str(before), "page_size": "100"},
                    headers={"Authorization": f"Bearer {self.token}"}) as r:
                r.raise_for_status()
                page = (await r.json())["notifications"]
            seqs = [n["seq"] for n in page if n["seq"] > self.last]
            got += seqs
            if not page or len(seqs) < len(page):
                break
            before = page[-1]["seq"]
        now = time.monotonic()
        self.received += [(s, now) for s in sorted(got)]
        self.refetched.update(got)
        self.last = max(self.last, upto)

    def drop(self) -> None:
        """Cut the TCP connection under the socket (as a network failure would)."""
        ws = self._ws
        if ws is not None:
            sock = ws.get_extra_info("socket")
            if sock is not None:
                try:
                    sock.shutdown(socket.SHUT_RDWR)
                except OSError:
                    pass

    async def close(self) -> None:
        self._stop = True
        if self._ws is not None:
            await self._ws.close()
        if self._task is not None:
            self._task.cancel()
            try:
                await self._task
            except (asyncio.CancelledError, Exception):
                pass
