"""The numbered stream: publishes at a steady rate through the producer API, answers recorded.

Publish ``k`` carries the message ``chaos-<k>``, so the database can be asked
afterwards which publishes were stored. Most publishes name one recipient; every
``batch_every``-th names ``batch_size`` of them (one grouped insert). Each goes
to a running node picked at random (a stopped one too: its answer comes late),
with the API key; the answer is kept as it came: the status, or ``timeout`` /
``connection`` when none came, and for a 2xx the ``(recipient, seq, uid)`` it
acknowledged.
"""

from __future__ import annotations

import asyncio
import contextlib
import random
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import aiohttp

from .cluster import API_KEY
from .servers import Proc

TIMEOUT = 10.0


@dataclass
class Publish:
    k: int
    users: list[str]
    sent: float
    status: int | str | None = None
    acked: list[tuple[str, int, str]] = field(default_factory=list)  # (user, seq, uid)

    @property
    def message(self) -> str:
        return f"chaos-{self.k}"

    @property
    def ok(self) -> bool:
        return isinstance(self.status, int) and 200 <= self.status < 300

    @property
    def error_answer(self) -> bool:
        """Answered, and not 2xx: the server said "not stored"."""
        return isinstance(self.status, int) and not self.ok


class Producer:
    def __init__(self, http: aiohttp.ClientSession, nodes: Callable[[], list[Proc]],
                 users: list[str], *, rate: float, batch_every: int = 10, batch_size: int = 10,
                 extra: dict[str, Any] | None = None):
        self.http = http
        self.nodes = nodes
        self.users = users
        self.rate = rate
        self.batch_every = batch_every
        self.batch_size = batch_size
        self.extra = extra or {}
        self.published: list[Publish] = []
        self._tasks: set[asyncio.Task[None]] = set()

    async def run(self, stop: asyncio.Event) -> None:
        """Publish at ``rate`` per second until ``stop`` is set, then wait for every answer."""
        start = time.monotonic()
        base = k = len(self.published)
        while not stop.is_set():
            k += 1
            size = self.batch_size if k % self.batch_every == 0 else 1
            pub = Publish(k, random.sample(self.users, min(size, len(self.users))),
                          time.monotonic())
            self.published.append(pub)
            task = asyncio.create_task(self._send(pub))
            self._tasks.add(task)
            task.add_done_callback(self._tasks.discard)
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(stop.wait(), start + (k - base) / self.rate
                                       - time.monotonic())
        await self.settle()

    async def settle(self) -> None:
        while self._tasks:
            await asyncio.gather(*list(self._tasks), return_exceptions=True)

    async def _send(self, pub: Publish) -> None:
        alive = self.nodes()
        if not alive:
            pub.status = "no node"
            return
        node = random.choice(alive)
        body = {"recipients": pub.users, "message": pub.message, "data": {"k": pub.k},
                **self.extra}
        try:
            async with self.http.post(
                    f"{node.url}/api/v1/notifications", json=body,
                    headers={"Authorization": f"Bearer {API_KEY}"},
                    timeout=aiohttp.ClientTimeout(total=TIMEOUT)) as r:
                pub.status = r.status
                if pub.ok:
                    answer = await r.json()
                    pub.acked = [(n["recipient"], n["seq"], n["uid"])
                                 for n in answer["notifications"]]
        except TimeoutError:
            pub.status = "timeout"
        except (aiohttp.ClientError, OSError):
            pub.status = "connection"
