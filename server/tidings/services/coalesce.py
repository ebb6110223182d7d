"""Coalescing: the requests of one moment served by one round trip.

Contract: items submitted while a run is busy wait and go together into the
next run (at most ``max_items`` per run, and no more ``weight`` than
``max_weight`` unless one item alone has more); runs happen one at a time, in
submission order. Each submitter gets its own item's result, or the exception
its run raised for it (a run may answer one item with an exception and the
others with results). Cancelling a submitter does not cancel the run its item
is in; stopping the runner cancels the items still waiting. :meth:`post`
queues an item without waiting for it; :meth:`idle` waits for every run.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable, Sequence
from typing import Generic, TypeVar

T = TypeVar("T")
R = TypeVar("R")


class Coalescer(Generic[T, R]):
    def __init__(self, run: Callable[[list[T]], Awaitable[Sequence[R | BaseException]]], *,
                 max_items: int = 256, weight: Callable[[T], int] = lambda _: 1,
                 max_weight: int | None = None):
        self._run = run
        self._max = max_items
        self._weight = weight
        self._max_weight = max_weight
        self._waiting: list[tuple[T, asyncio.Future[R]]] = []
        self._task: asyncio.Task[None] | None = None

    async def submit(self, item: T) -> R:
        """``item``'s result, once the run that takes it has finished."""
        # Cancelling the submitter cancels this future only: the run skips it.
        return await self.post(item)

    def post(self, item: T) -> asyncio.Future[R]:
        """Queue ``item`` and return at once: the future of its result (awaiting it is
        optional; a run whose results nobody awaits should answer none with an exception)."""
        done: asyncio.Future[R] = asyncio.get_running_loop().create_future()
        self._waiting.append((item, done))
        if self._task is None:
            self._task = asyncio.create_task(self._drain())
        return done

    async def idle(self) -> None:
        """Returns once every item queued so far (and since) has been run."""
        while self._task is not None:
            await asyncio.wait([self._task])

    def _take(self) -> int:
        """How many waiting items the next run takes (at least one)."""
        if self._max_weight is None:
            return self._max
        total = 0
        for n, (item, _) in enumerate(self._waiting[:self._max]):
            total += self._weight(item)
            if total > self._max_weight:
                return max(n, 1)
        return self._max

    async def _drain(self) -> None:
        batch: list[tuple[T, asyncio.Future[R]]] = []
        try:
            while self._waiting:
                await asyncio.sleep(0)  # let the submits of this moment gather
                n = self._take()
                batch, self._waiting = self._waiting[:n], self._waiting[n:]
                try:
                    results = await self._run([item for item, _ in batch])
                except Exception as exc:
                    results = [exc] * len(batch)
                for (_, done), result in zip(batch, results, strict=True):
                    if done.done():
                        continue
                    if isinstance(result, BaseException):
                        done.set_exception(result)
                    else:
                        done.set_result(result)
                batch = []
        finally:
            for _, done in batch + self._waiting:
                done.cancel()
            self._waiting = []
            self._task = None
