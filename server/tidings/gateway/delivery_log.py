"""The socket delivery log: which stored notifications reached or were acked by a socket here.

Contract: entries are gathered in memory and written in one batch every
``RECORD_EVERY`` seconds (and at shutdown), best effort: a failed write
drops its batch (the log is a record, not a guarantee); PostgreSQL being
down is reported to the node's health (one line per outage), another
failure is logged. At
most ``MAX_ACKS`` acks wait between two writes; more are not logged.
"""

from __future__ import annotations

import asyncio
import logging

from ..core.errors import StoreError, StoreUnavailable
from ..services.realtime import Realtime

log = logging.getLogger(__name__)

RECORD_EVERY = 0.5  # seconds between writes
MAX_ACKS = 100_000


class DeliveryLog:
    def __init__(self, realtime: Realtime):
        self._realtime = realtime
        self._delivered: list[tuple[str, str]] = []  # (uid, user id)
        self._acked: set[tuple[str, int]] = set()  # (user id, seq)
        self.total = 0  # deliveries handed to a flush since the node started

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
        """Flush every ``RECORD_EVERY`` seconds, forever."""
        while True:
            await asyncio.sleep(RECORD_EVERY)
            try:
                await self.flush()
            except StoreUnavailable as exc:
                self._realtime.report(exc)
            except StoreError as exc:
                log.warning("socket delivery log not written: %s", exc)
