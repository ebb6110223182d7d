"""The coalescer: runs in order (one at a time, or several with keys held in turn), each
submitter gets its own item's answer."""

from __future__ import annotations

import asyncio
import random

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from tidings.services.coalesce import Coalescer, pick


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


# -- the scheduling rule, without an event loop ---------------------------------------

_items = st.lists(st.tuples(st.frozensets(st.sampled_from("abcde"), max_size=3),
                            st.integers(1, 6)), max_size=30)


@settings(max_examples=300, deadline=None)
@given(items=_items, runs=st.integers(1, 4), max_items=st.integers(1, 6),
       max_weight=st.none() | st.integers(1, 12), data=st.data())
def test_any_interleaving_runs_each_item_once_keys_in_turn_within_limits(
        items, runs, max_items, max_weight, data):
    waiting = list(range(len(items)))
    flight: list[list[int]] = []
    started: list[list[int]] = []
    while waiting or flight:
        busy = {k for run in flight for i in run for k in items[i][0]}
        chosen = pick(((items[i][0], items[i][1]) for i in waiting), busy,
                      max_items=max_items, max_weight=max_weight)
        if not flight:
            assert waiting and chosen and chosen[0] == 0, "nothing busy: the first item goes"
        if chosen and len(flight) < runs and (
                not flight or data.draw(st.booleans(), label="start rather than finish")):
            run = [waiting[c] for c in chosen]
            assert run == sorted(run), "a run holds its items in submission order"
            assert not busy & {k for i in run for k in items[i][0]}, "no key in two runs"
            assert len(run) <= max_items
            weight = sum(items[i][1] for i in run)
            assert max_weight is None or weight <= max_weight or len(run) == 1
            for skipped in waiting[:waiting.index(run[-1])]:
                if skipped not in run:  # passed over only for a key
                    earlier = {k for j in waiting[:waiting.index(skipped)] if j not in run
                               for k in items[j][0]}
                    assert items[skipped][0] & (busy | earlier)
            waiting = [i for i in waiting if i not in run]
            flight.append(run)
            started.append(run)
        else:
            flight.pop(data.draw(st.integers(0, len(flight) - 1), label="finishes"))
    assert sorted(i for run in started for i in run) == list(range(len(items)))
    for key in "abcde":
        order = [i for run in started for i in run if key in items[i][0]]
        assert order == sorted(order), f"items with key {key} start in submission order"


@given(items=_items, max_items=st.integers(1, 6))
def test_without_keys_runs_take_the_queue_in_order(items, max_items):
    waiting = [((), w) for _, w in items]
    taken: list[int] = []
    while len(taken) < len(waiting):
        chosen = pick(waiting[len(taken):], set(), max_items=max_items)
        assert chosen == list(range(len(chosen))) and chosen
        taken += [len(taken) + c for c in chosen]
    assert taken == list(range(len(items)))


# -- several runs in flight ----------------------------------------------------------

async def test_runs_without_a_common_key_are_in_flight_together():
    gate = asyncio.Event()
    flying: list[int] = []
    most = 0

    async def run(items: list[str]) -> list[str]:
        nonlocal most
        flying.append(len(items))
        most = max(most, len(flying))
        await gate.wait()
        flying.pop()
        return [i.upper() for i in items]

    c: Coalescer[str, str] = Coalescer(run, keys=lambda i: {i}, runs=3)
    first = asyncio.ensure_future(c.submit("a"))
    await asyncio.sleep(0.01)
    rest = [asyncio.ensure_future(c.submit(i)) for i in "bc"]
    await asyncio.sleep(0.01)
    assert most == 2, "the second moment's items run while the first run is in flight"
    gate.set()
    assert [await first, *[await r for r in rest]] == ["A", "B", "C"]


async def test_an_item_whose_key_is_busy_waits_for_that_run_and_others_pass_it():
    gates = {name: asyncio.Event() for name in ("u1", "v", "u2")}
    log: list[str] = []

    async def run(items: list[tuple[str, str]]) -> list[str]:
        names = [n for n, _ in items]
        log.append("start " + "+".join(names))
        for n in names:
            await gates[n].wait()
        log.append("end " + "+".join(names))
        return names

    c: Coalescer[tuple[str, str], str] = Coalescer(run, keys=lambda i: {i[1]}, runs=4)
    u1 = asyncio.ensure_future(c.submit(("u1", "u")))
    await asyncio.sleep(0.01)
    u2 = asyncio.ensure_future(c.submit(("u2", "u")))
    v = asyncio.ensure_future(c.submit(("v", "v")))
    await asyncio.sleep(0.01)
    assert log == ["start u1", "start v"], "u2 waits for u1's run; v, later, passes it"
    gates["v"].set()
    assert await v == "v"
    gates["u2"].set()
    await asyncio.sleep(0.01)
    assert not u2.done() and "start u2" not in log
    gates["u1"].set()
    assert (await u1, await u2) == ("u1", "u2")
    assert log.index("end u1") < log.index("start u2")
    await c.idle()


async def test_random_runs_answer_every_item_and_never_overlap_on_a_key():
    rng = random.Random(16)
    holders: dict[str, int] = {}
    done_order: list[int] = []

    async def run(items: list[tuple[int, frozenset[str]]]) -> list[int | BaseException]:
        mine = {k for _, ks in items for k in ks}
        assert not mine & holders.keys(), "a key in two runs at once"
        holders.update(dict.fromkeys(mine, 1))
        await asyncio.sleep(rng.random() / 500)
        for k in mine:
            del holders[k]
        done_order.extend(i for i, _ in items)
        return [ValueError(i) if i % 7 == 0 else i for i, _ in items]

    c: Coalescer[tuple[int, frozenset[str]], int] = Coalescer(
        run, keys=lambda i: i[1], runs=4, max_items=5)
    items = [(i, frozenset(rng.sample("abcdefgh", rng.randint(0, 2)))) for i in range(300)]
    futures = []
    for item in items:
        futures.append(c.post(item))
        if rng.random() < 0.3:
            await asyncio.sleep(rng.random() / 1000)
    results = await asyncio.gather(*futures, return_exceptions=True)
    for i, result in enumerate(results):
        assert isinstance(result, ValueError) if i % 7 == 0 else result == i
    assert sorted(done_order) == list(range(300))
    for key in "abcdefgh":
        order = [i for i in done_order if key in items[i][1]]
        assert order == sorted(order), f"items with key {key} ran in submission order"
    assert done_order != sorted(done_order), "unrelated items finished out of order"
    await c.idle()
    assert not c._busy, "every key released"


async def test_idle_waits_for_every_run_in_flight():
    gates = [asyncio.Event(), asyncio.Event()]
    finished: list[int] = []

    async def run(items: list[int]) -> list[None]:
        await gates[items[0]].wait()
        finished.extend(items)
        return [None] * len(items)

    c: Coalescer[int, None] = Coalescer(run, keys=lambda i: {i}, runs=2)
    c.post(0)
    await asyncio.sleep(0.01)
    c.post(1)
    idle = asyncio.create_task(c.idle())
    await asyncio.sleep(0.01)
    gates[1].set()
    await asyncio.sleep(0.01)
    assert finished == [1] and not idle.done()
    gates[0].set()
    await idle
    assert finished == [1, 0]


def test_a_coalescer_needs_a_run():
    with pytest.raises(ValueError, match="at least one run"):
        Coalescer(lambda items: asyncio.sleep(0, items), runs=0)


async def test_a_lingering_run_takes_the_items_posted_while_it_gathers():
    runs: list[list[int]] = []

    async def run(items: list[int]) -> list[None]:
        runs.append(items)
        return [None] * len(items)

    c: Coalescer[int, None] = Coalescer(run, linger=0.05)
    c.post(0)
    for i in (1, 2):  # later moments, within the linger
        await asyncio.sleep(0.005)
        c.post(i)
    await c.idle()
    assert runs == [[0, 1, 2]]
    eager: Coalescer[int, None] = Coalescer(run)
    eager.post(3)
    await asyncio.sleep(0.005)
    eager.post(4)
    await eager.idle()
    assert runs[1:] == [[3], [4]], "without a linger, only one moment's items share a run"
