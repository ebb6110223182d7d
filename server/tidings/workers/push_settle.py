"""Group commit of a push worker's results: log rows and job changes, written together.

What may live here: the buffer between the sends and ``store.push_jobs.settle``.

Contract: rows and job changes handed to a :class:`Settler` are written by one
transaction per flush, in the order they were handed over; a flush starts as
soon as the previous one ends, so a busy worker writes large batches and an
idle one writes at once. :meth:`Settler.finish` returns once the job's change
is committed. While PostgreSQL is unavailable nothing is dropped: the batch is
tried again every half second. A batch PostgreSQL refuses is written again
without its log rows (logged as an error) so that jobs still move on.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable, Sequence

from ..core.errors import StoreError, StoreUnavailable
from ..store import push as deliveries
from ..store import push_jobs
from ..store.push_jobs import Pool, Settlement

log = logging.getLogger(__name__)
RETRY_SECONDS = 0.5


class Settler:
    def __init__(self, pool: Pool, worker: str, now: Callable[[], float | None]):
        self._pool, self._worker, self._now = pool, worker, now
        self._batch = Settlement()
        self._waiters: list[asyncio.Future[None]] = []
        self._kick = asyncio.Event()
        self._down = False

    def record(self, rec: deliveries.Record) -> None:
        self._batch.records.append(rec)
        self._kick.set()

    async def sending(self, rec: deliveries.Record) -> None:
        """Log ``rec`` (a send about to start); returns once it is committed."""
        self._batch.records.append(rec)
        await self._committed()

    def invalid(self, inv: deliveries.Invalid) -> None:
        self._batch.invalid.append(inv)
        self._kick.set()

    async def done(self, job_id: int) -> None:
        self._batch.done.append(job_id)
        await self._committed()

    async def retry(self, job_id: int, devices: Sequence[int], delay: float) -> None:
        self._batch.retries.append((job_id, devices, delay))
        await self._committed()

    async def dead(self, job_id: int, devices: Sequence[int], reason: str) -> None:
        self._batch.dead.append((job_id, devices, reason))
        await self._committed()

    async def _committed(self) -> None:
        waiter = asyncio.get_running_loop().create_future()
        self._waiters.append(waiter)
        self._kick.set()
        await waiter

    async def run(self) -> None:
        """Flush until cancelled."""
        while True:
            await self._kick.wait()
            self._kick.clear()
            await self.flush()

    async def flush(self) -> None:
        """Write what is buffered now; on an outage, keep it and try again."""
        while self._batch:
            batch, waiters = self._batch, self._waiters
            self._batch, self._waiters = Settlement(), []
            try:
                await self._write(batch)
            except StoreUnavailable as exc:
                if not self._down:
                    log.warning("push results wait for PostgreSQL: %s", exc)
                self._down = True
                self._merge_back(batch, waiters)
                await asyncio.sleep(RETRY_SECONDS)
                continue
            if self._down:
                log.info("push results written again")
                self._down = False
            for waiter in waiters:
                if not waiter.done():
                    waiter.set_result(None)

    async def _write(self, batch: Settlement) -> None:
        try:
            await push_jobs.settle(self._pool, self._worker, batch, self._now())
        except StoreError as exc:
            log.error("PostgreSQL refused %d push log rows (%s); jobs settled without them",
                      len(batch.records) + len(batch.invalid), exc)
            batch.records, batch.invalid = [], []
            await push_jobs.settle(self._pool, self._worker, batch, self._now())

    def _merge_back(self, batch: Settlement, waiters: list[asyncio.Future[None]]) -> None:
        newer = self._batch
        for name in ("records", "invalid", "done", "retries", "dead"):
            getattr(batch, name).extend(getattr(newer, name))
        self._batch = batch
        self._waiters = waiters + self._waiters
