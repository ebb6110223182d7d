"""The socket delivery log: which stored notifications reached or were acked by a socket here.

Contract: entries are gathered in memory and written in one batch every
``RECORD_EVERY`` seconds (and at shutdown), best effort: a failed write
drops its batch (the log is a record, not a guarantee); PostgreSQL being
down is reported to the node's health (one line per outage), another
failure is logged. At
most ``MAX_ACKS`` acks wait between two writes; more are not logged.
While a broadcast is being written to the sockets (:meth:`DeliveryLog.bulk`:
an event reached ``BULK`` sockets or more), a write that falls due waits
until ``LULL`` seconds pass without one, ``HOLD`` seconds at most: its rows
(PostgreSQL's time and the node's) do not compete with the broadcast's
socket writes.
"""

from __future__ import annotations

import asyncio
import logging
import math
import time

from ..core.errors import StoreError, StoreUnavailable
from ..services.realtime import Realtime

log = logging.getLogger(__name__)

RECORD_EVERY = 0.5  # seconds between writes
MAX_ACKS = 100_000
BULK = 500  # sockets an event reaches that make it part of a broadcast
LULL = 0.2  # seconds without a broadcast's event before a write goes ahead
HOLD = 2.0  # seconds at most a write waits for that lull


class DeliveryLog:
    def __init__(self, realtime: Realtime):
        self._realtime = realtime
        self._delivered: list[tuple[str, str]] = []  # (uid, user id)
        self._acked: set[tuple[str, int]] = set()  # (user id, seq)
        self.total = 0  # deliveries handed to a flush since the node started
        self._bulk_at = -math.inf  # time.monotonic() of the last broadcast's event

    def bulk(self, now: float) -> None:
        """An event reached ``BULK`` sockets or more at ``now`` (time.monotonic())."""
        self._bulk_at = now

    def hold(self, now: float, due: float) -> float:
        """Seconds a write due since ``due`` still waits at ``now`` (0: write now)."""
        return max(0.0, min(self._bulk_at + LULL, due + HOLD) - now)

    def delivered(self, uid: str, user_id: str) -> None:
        self._delivered.append((uid, user_id))

    def acked(self, user_id: str, seq: int) -> None:
        if len(self._acked) < MAX_ACKS:
            self._acked.add((user_id, seq))

    async def flush(self) -> None:
        """Write what was gathered; raises StoreUnavailable / StoreError (the batch is lost)."""
        batch, self._delivered = self._delivered, []
        self.total += len(batch)
        acks, self._acked = self._acked, set()
        await self._realtime.record(batch, acks)

    async def run(self) -> None:
        """Flush every ``RECORD_EVERY`` seconds (each after a broadcast's lull), forever."""
        while True:
            await asyncio.sleep(RECORD_EVERY)
            due = time.monotonic()
            while (wait := self.hold(time.monotonic(), due)) > 0:  # noqa: ASYNC110 (a moving deadline)
                await asyncio.sleep(wait)
            try:
                await self.flush()
            except StoreUnavailable as exc:
                self._realtime.report(exc)
            except StoreError as exc:
                log.warning("socket delivery log not written: %s", exc)
