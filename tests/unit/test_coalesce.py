"""The coalescer: runs in order, one at a time, each submitter gets its own item's answer."""

from __future__ import annotations

import asyncio

import pytest

from tidings.services.coalesce import Coalescer


async def test_items_of_a_moment_share_a_run_in_order():
    runs: list[list[int]] = []

    async def run(items: list[int]) -> list[int]:
        runs.append(items)
        await asyncio.sleep(0.01)
        return [i * 10 for i in items]

    c: Coalescer[int, int] = Coalescer(run, max_items=4)
    results = await asyncio.gather(*(c.submit(i) for i in range(10)))
    assert results == [i * 10 for i in range(10)]
    assert [i for r in runs for i in r] == list(range(10))
    assert all(len(r) <= 4 for r in runs) and len(runs) == 3


async def test_runs_stay_under_the_weight_cap_but_take_a_heavy_item_alone():
    runs: list[list[int]] = []

    async def run(items: list[int]) -> list[int]:
        runs.append(items)
        await asyncio.sleep(0.01)
        return items

    c: Coalescer[int, int] = Coalescer(run, weight=lambda i: i, max_weight=10)
    await asyncio.gather(*(c.submit(i) for i in (1, 4, 5, 3, 20, 2)))
    assert runs == [[1, 4, 5], [3], [20], [2]]


async def test_a_run_answers_each_item_and_failures_stay_with_their_items():
    async def run(items: list[int]) -> list[int | BaseException]:
        if 99 in items:
            raise RuntimeError("whole run failed")
        return [ValueError(f"bad {i}") if i % 2 else i for i in items]

    c: Coalescer[int, int] = Coalescer(run)
    results = await asyncio.gather(*(c.submit(i) for i in range(4)), return_exceptions=True)
    assert results[0] == 0 and results[2] == 2
    assert isinstance(results[1], ValueError) and str(results[1]) == "bad 1"
    assert isinstance(results[3], ValueError)
    with pytest.raises(RuntimeError, match="whole run failed"):
        await c.submit(99)
    assert await c.submit(4) == 4, "a failed run leaves the coalescer working"


async def test_a_cancelled_submitter_does_not_cancel_the_run():
    finished: list[list[int]] = []
    gate = asyncio.Event()

    async def run(items: list[int]) -> list[int]:
        await gate.wait()
        finished.append(items)
        return items

    c: Coalescer[int, int] = Coalescer(run)
    first = asyncio.ensure_future(c.submit(1))
    second = asyncio.ensure_future(c.submit(2))
    await asyncio.sleep(0.01)
    first.cancel()
    gate.set()
    assert await second == 2
    assert finished == [[1, 2]]


async def test_posted_items_run_without_a_waiter_and_idle_waits_for_them():
    runs: list[list[int]] = []
    gate = asyncio.Event()

    async def run(items: list[int]) -> list[None]:
        await gate.wait()
        runs.append(items)
        return [None] * len(items)

    c: Coalescer[int, None] = Coalescer(run)
    futures = [c.post(i) for i in range(3)]
    assert not any(f.done() for f in futures), "post returns before the run"
    idle = asyncio.create_task(c.idle())
    await asyncio.sleep(0)
    c.post(3)  # queued while a run is busy: idle waits for it too
    assert not idle.done()
    gate.set()
    await idle
    assert [i for r in runs for i in r] == [0, 1, 2, 3] and all(f.done() for f in futures)
    await c.idle()  # nothing queued: returns at once
