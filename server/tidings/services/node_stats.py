"""A node's stats beat: every few seconds it writes its own figures to Redis for the console.

Contract: from :meth:`NodeStats.start` on, the node is sampled (``sample()``:
open sockets, users, notifications delivered so far) every ``every`` seconds
and its figures are written with the rate of deliveries since the previous beat
(:mod:`tidings.bus.node_stats`). A failed write is retried at the next beat
and reported to the node's health (said once per outage), never raised.
:meth:`NodeStats.stop` ends the beats without cancelling one under way, then
removes the node's figures.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import Callable
from dataclasses import dataclass

from ..bus import node_stats
from ..bus.connect import Redis
from ..core.errors import BusUnavailable, Unavailable

log = logging.getLogger(__name__)

EVERY = 2.0  # seconds between beats (the presence heartbeat's pace)
STOP_WAIT = 10.0  # seconds a beat under way may take to end at shutdown (then it is cancelled)


@dataclass(frozen=True, slots=True)
class Sample:
    sockets: int
    users: int
    delivered: int  # running total


class NodeStats:
    def __init__(self, redis: Redis, node_id: str, sample: Callable[[], Sample],
                 report: Callable[[Unavailable], None], every: float = EVERY):
        self._redis = redis
        self._node_id = node_id
        self._sample = sample
        self._report = report
        self._every = every
        self._started = time.time()
        self._last: tuple[float, int] = (time.monotonic(), 0)
        self._stopping = asyncio.Event()
        self._task: asyncio.Task[None] | None = None

    async def beat(self) -> None:
        """Write the figures now; raises BusUnavailable."""
        s = self._sample()
        now = time.monotonic()
        then, before = self._last
        rate = (s.delivered - before) / (now - then) if now > then else 0.0
        self._last = (now, s.delivered)
        await node_stats.write(self._redis, self._node_id, node_stats.Figures(
            s.sockets, s.users, s.delivered, round(max(rate, 0.0), 3), time.time(),
            self._started))

    def start(self) -> None:
        self._task = asyncio.create_task(self._run(), name="node-stats")

    async def _run(self) -> None:
        while not self._stopping.is_set():
            try:
                await self.beat()
            except BusUnavailable as exc:
                self._report(exc)
                log.debug("node stats not written: %s", exc)
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._stopping.wait(), self._every)

    async def stop(self) -> None:
        """End the beats (a beat under way finishes: redis-py may swallow a cancellation
        that lands inside a command), then remove the node's figures."""
        self._stopping.set()
        if self._task is not None:
            with contextlib.suppress(TimeoutError, asyncio.CancelledError):
                await asyncio.wait_for(self._task, STOP_WAIT)
        try:
            await node_stats.forget(self._redis, self._node_id)
        except BusUnavailable as exc:
            log.debug("node stats not removed: %s", exc)
