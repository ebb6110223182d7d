"""Coalescing: the requests of one moment served by one round trip, several runs at once.

Contract: items submitted while the runs are busy wait and go together into a
later run (at most ``max_items`` per run, and no more ``weight`` than
``max_weight`` unless one item alone has more). Up to ``runs`` runs are in
flight at once (one, by default). A run gathers for ``linger`` seconds before it
takes what waits (0 by default: the submits of the same moment only), for work
nobody waits on, where fewer and larger runs are worth a delay.

Order: each run takes the waiting items in submission order, passing over
only items held by a key, and stops at its limits; so without keys runs start
in submission order (and with ``runs=1``, as before, each finishes before the
next starts). Items that share a key (``keys``: each item's keys, e.g. the
users it writes to) are never in two runs in flight at once: an item whose key
is busy waits, and so does every later item sharing a key with a waiting one.
So items sharing a key run in submission order, each run finishing before the
next one holding that key starts; items with no common key may finish in any
order. The rule is :func:`pick` (pure).

Answers: each submitter gets its own item's result, or the exception its run
raised for it (a run may answer one item with an exception and the others with
results). Cancelling a submitter does not cancel the run its item is in;
cancelling a run (stopping the loop) cancels its items and the items still
waiting. :meth:`post` queues an item without waiting for it; :meth:`idle`
waits for every run.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable, Collection, Hashable, Iterable, Sequence
from typing import Generic, TypeVar

T = TypeVar("T")
R = TypeVar("R")

#: How many waiting items one pick looks at, in multiples of ``max_items``: a long
#: queue held up behind a busy key is not scanned whole at every run.
WINDOW = 4

_NO_KEYS: tuple[Hashable, ...] = ()


def pick(waiting: Iterable[tuple[Collection[Hashable], int]], busy: Collection[Hashable], *,
         max_items: int, max_weight: int | None = None) -> list[int]:
    """Which waiting items the next run takes: their indices, in order.

    ``waiting`` holds each waiting item's keys and weight, in submission order;
    ``busy`` the keys of the runs in flight. An item is skipped if one of its keys
    is busy or belongs to an item skipped before it (so items sharing a key keep
    their order); the others are taken in order until ``max_items`` are taken or
    the next would bring the weight over ``max_weight`` (the first item taken is
    taken whatever its weight). With nothing busy, the first item is always taken.
    """
    taken: list[int] = []
    held: set[Hashable] = set()
    total = 0
    for i, (keys, weight) in enumerate(waiting):
        if any(k in busy or k in held for k in keys):
            held.update(keys)
            continue
        if taken and max_weight is not None and total + weight > max_weight:
            break
        taken.append(i)
        total += weight
        if len(taken) == max_items:
            break
    return taken


class _Waiting(Generic[T, R]):
    __slots__ = ("done", "item", "keys", "weight")

    def __init__(self, item: T, keys: Collection[Hashable], weight: int,
                 done: asyncio.Future[R]):
        self.item = item
        self.keys = keys
        self.weight = weight
        self.done = done


class Coalescer(Generic[T, R]):
    def __init__(self, run: Callable[[list[T]], Awaitable[Sequence[R | BaseException]]], *,
                 max_items: int = 256, weight: Callable[[T], int] = lambda _: 1,
                 max_weight: int | None = None,
                 keys: Callable[[T], Collection[Hashable]] | None = None, runs: int = 1,
                 linger: float = 0.0):
        """``keys``: an item's keys (see the module's order); ``runs``: most runs in flight;
        ``linger``: seconds a run gathers before it takes what waits."""
        if runs < 1:
            raise ValueError("a coalescer needs at least one run")
        self._run = run
        self._max = max_items
        self._weight = weight
        self._max_weight = max_weight
        self._keys = keys
        self._runs = runs
        self._linger = linger
        self._waiting: list[_Waiting[T, R]] = []
        self._busy: dict[Hashable, int] = {}  # key -> runs in flight holding it
        self._tasks: set[asyncio.Task[None]] = set()
        self._starting = False  # a run task is gathering: it will take what waits

    async def submit(self, item: T) -> R:
        """``item``'s result, once the run that takes it has finished."""
        # Cancelling the submitter cancels this future only: the run skips it.
        return await self.post(item)

    def post(self, item: T) -> asyncio.Future[R]:
        """Queue ``item`` and return at once: the future of its result (awaiting it is
        optional; a run whose results nobody awaits should answer none with an exception)."""
        done: asyncio.Future[R] = asyncio.get_running_loop().create_future()
        keys = _NO_KEYS if self._keys is None else self._keys(item)
        self._waiting.append(_Waiting(item, keys, self._weight(item), done))
        self._start()
        return done

    async def idle(self) -> None:
        """Returns once every item queued so far (and since) has been run."""
        # Something waits only while a run is in flight or gathering (see _start).
        while self._tasks:
            await asyncio.wait(set(self._tasks))

    def _start(self) -> None:
        """Start a run task if items wait, none is gathering and a run is free."""
        if self._waiting and not self._starting and len(self._tasks) < self._runs:
            self._starting = True
            task = asyncio.create_task(self._one())
            self._tasks.add(task)
            task.add_done_callback(self._tasks.discard)

    def _take(self) -> list[_Waiting[T, R]]:
        """Remove the items the next run takes from the queue; mark their keys busy."""
        window = self._waiting[:WINDOW * self._max]
        chosen = pick(((w.keys, w.weight) for w in window), self._busy,
                      max_items=self._max, max_weight=self._max_weight)
        if not chosen:
            return []
        if len(chosen) == len(window):
            batch, self._waiting = window, self._waiting[len(window):]
        else:
            taken = set(chosen)
            batch = [window[i] for i in chosen]
            self._waiting = [w for i, w in enumerate(window) if i not in taken] + \
                self._waiting[len(window):]
        for key in {k for w in batch for k in w.keys}:
            self._busy[key] = self._busy.get(key, 0) + 1
        return batch

    def _release(self, batch: list[_Waiting[T, R]]) -> None:
        for key in {k for w in batch for k in w.keys}:
            if self._busy[key] == 1:
                del self._busy[key]
            else:
                self._busy[key] -= 1

    async def _one(self) -> None:
        """One run: gather the items of this moment, run them, answer each."""
        batch: list[_Waiting[T, R]] = []
        gathering = True
        cancelled = False
        try:
            await asyncio.sleep(self._linger)  # let the submits of this moment gather
            self._starting = gathering = False
            batch = self._take()
            if not batch:
                return  # what waits is held by busy keys: their runs start the next
            self._start()  # more may wait that another run can take now
            try:
                results = await self._run([w.item for w in batch])
            except Exception as exc:
                results = [exc] * len(batch)
            for w, result in zip(batch, results, strict=True):
                if w.done.done():
                    continue
                if isinstance(result, BaseException):
                    w.done.set_exception(result)
                else:
                    w.done.set_result(result)
        except asyncio.CancelledError:
            cancelled = True
            raise
        finally:
            if gathering:
                self._starting = False
            self._release(batch)
            for w in batch:
                w.done.cancel()  # only those not answered
            if cancelled:
                for w in self._waiting:
                    w.done.cancel()
                self._waiting = []
            elif batch:
                task = asyncio.current_task()
                assert task is not None
                self._tasks.discard(task)  # this run's place is free for the next
                self._start()
