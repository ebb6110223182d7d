"""Group commit of a push worker's writes: 'sending' rows, and each job's outcome rows
together with its change (deleted, rescheduled, dead).

What may live here: the buffer between the sends and ``store.push_results.settle``.

Contract: what is handed to a :class:`Settler` is written by a few concurrent
flushes (``flushes``), each one transaction holding everything handed over
since the previous flush began, so a busy worker writes large batches and an
idle one writes at once. A job's log rows are written in the transaction that
changes the job; every method returns once its part is committed. While
PostgreSQL is unavailable nothing is dropped: the batch is tried again every
half second. A batch PostgreSQL refuses is written again without its log rows
(logged as an error) so that its jobs still move on.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field

from ..core.errors import StoreError, StoreUnavailable
from ..store import push_results
from ..store.delivery_log import Invalid, Record
from ..store.digests import Hold
from ..store.push_jobs import Pool
from ..store.push_results import Settlement

log = logging.getLogger(__name__)
RETRY_SECONDS = 0.5


@dataclass(slots=True)
class JobLog:
    """The log rows of one job, written with its change; a job with nothing to send now
    may be ``deferred`` (due again then, unix seconds) or ``held`` for a digest instead
    of done."""

    records: list[Record] = field(default_factory=list)
    invalid: list[Invalid] = field(default_factory=list)  # rejected tokens: deactivate
    deferred: float | None = None
    held: Hold | None = None
    bounce: tuple[str, str, str] | None = None  # e-mail: (user, address, answer) to mark


class Settler:
    def __init__(self, pool: Pool, worker: str, now: Callable[[], float | None],
                 flushes: int = 3):
        self._pool, self._worker, self._now = pool, worker, now
        self._flushes = flushes
        self._batch = Settlement()
        self._waiters: list[asyncio.Future[None]] = []
        self._kick = asyncio.Event()
        self._down = False

    async def sending(self, rec: Record) -> None:
        """Log ``rec`` (a send about to start)."""
        self._batch.records.append(rec)
        await self._committed()

    async def done(self, job_id: int, job_log: JobLog) -> None:
        """The job is over: deleted, or deferred or held as its log says."""
        self._add(job_log)
        if job_log.deferred is not None:
            self._batch.deferred.append((job_id, job_log.deferred))
        elif job_log.held is not None:
            self._batch.holds.append(job_log.held)
        else:
            self._batch.done.append(job_id)
        await self._committed()

    async def retry(self, job_id: int, devices: Sequence[int], delay: float,
                    job_log: JobLog) -> None:
        self._add(job_log)
        self._batch.retries.append((job_id, devices, delay))
        await self._committed()

    async def dead(self, job_id: int, devices: Sequence[int], reason: str,
                   job_log: JobLog) -> None:
        self._add(job_log)
        self._batch.dead.append((job_id, devices, reason))
        await self._committed()

    def _add(self, job_log: JobLog) -> None:
        self._batch.records.extend(job_log.records)
        self._batch.invalid.extend(job_log.invalid)
        if job_log.bounce is not None:
            self._batch.bounces.append(job_log.bounce)

    async def _committed(self) -> None:
        waiter = asyncio.get_running_loop().create_future()
        self._waiters.append(waiter)
        self._kick.set()
        await waiter

    async def run(self) -> None:
        """Flush until cancelled, ``flushes`` at a time."""
        await asyncio.gather(*(self._flusher() for _ in range(self._flushes)))

    async def _flusher(self) -> None:
        while True:
            while not self._batch:
                self._kick.clear()
                await self._kick.wait()
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
            return

    async def _write(self, batch: Settlement) -> None:
        try:
            await push_results.settle(self._pool, self._worker, batch, self._now())
        except StoreError as exc:
            log.error("PostgreSQL refused %d push log rows (%s); jobs settled without them",
                      len(batch.records) + len(batch.invalid), exc)
            batch.records, batch.invalid = [], []
            await push_results.settle(self._pool, self._worker, batch, self._now())

    def _merge_back(self, batch: Settlement, waiters: list[asyncio.Future[None]]) -> None:
        newer = self._batch
        for name in ("records", "invalid", "done", "retries", "dead", "deferred", "holds",
                     "bounces"):
            getattr(batch, name).extend(getattr(newer, name))
        self._batch = batch
        self._waiters = waiters + self._waiters
