"""The ``latency`` and ``throughput`` scenarios: notifications offered at a fixed rate (open loop).

- ``latency``: single-recipient notifications at ``--rate`` per second to
  ``--subscribers`` sockets, after a short warm-up at the same rate; p50/p95/p99/max
  publish-to-socket latency, node CPU per delivery (and with PostgreSQL and Redis).
- ``throughput``: a ladder of offered deliveries per second (``--steps``), each
  notification to ``--batch`` recipients, through the plain endpoint or (``--endpoint
  batch``) ``--per-request`` notifications per batch request. The ladder stops at the
  first step that breaks (an error, a missed notification, p99 or the driver's lag
  past ``--max-p99-ms``); the step before it is what was sustained. When no step broke,
  the top step is a lower bound (``ceiling_reached`` false).

Every step records the driver's CPU in its window; the break step's too, since a
driver that cannot offer the load breaks the ladder as surely as the server does.
"""

from __future__ import annotations

import asyncio
import sys
import time
from collections.abc import Awaitable, Callable
from typing import Any

from .producers import AnyProducer, Seqs
from .run import Run
from .sockets import Sub, check, drain, users
from .stats import lat_summary, ms


async def offered_load(rate: float, duration: float,
                       fire: Callable[[int, float], Awaitable[Any]], inflight: int) -> float:
    """Fire ``rate`` calls per second for ``duration`` s on schedule (open loop).

    Each call gets its index and the ``time.monotonic()`` it was due at, so latency
    counts any time a request waited for the driver too. Returns how late the last
    one started.
    """
    sem = asyncio.Semaphore(inflight)
    total = max(1, int(rate * duration))
    mono0 = time.monotonic()
    tasks: set[asyncio.Task[Any]] = set()
    lag = 0.0

    async def call(i: int, at: float) -> None:
        try:
            await fire(i, at)
        finally:
            sem.release()

    i = 0
    while i < total:
        now = time.monotonic() - mono0
        due = min(total, int(now * rate) + 1)
        while i < due:
            await sem.acquire()
            lag = time.monotonic() - mono0 - i / rate
            t = asyncio.create_task(call(i, mono0 + i / rate))
            tasks.add(t)
            t.add_done_callback(tasks.discard)
            i += 1
        await asyncio.sleep(0.002)
    if tasks:
        await asyncio.gather(*tasks)
    return lag


def expect(by_user: dict[str, Sub], seqs: Seqs | None) -> None:
    for user, seq in (seqs or {}).items():
        sub = by_user[user]
        sub.expected = max(sub.expected, seq)


async def step(r: Run, subs: list[Sub], producer: AnyProducer, rate: float, batch: int,
               seconds: float, tag: str) -> dict[str, Any]:
    """Offer ``rate`` notifications/s of ``batch`` recipients each for ``seconds``."""
    r.tally.reset()
    n = len(subs)
    names = [s.user for s in subs]
    by_user = {s.user: s for s in subs}
    per = producer.per_request
    errors0 = producer.errors
    received0 = r.tally.received

    def group(k: int) -> list[str]:
        start = (k * batch) % n
        chosen = names[start:start + batch]
        return chosen + names[:batch - len(chosen)]

    async def fire(i: int, due: float) -> None:
        if per == 1:
            expect(by_user, await producer.publish(group(i), tag, due))
            return
        for seqs in await producer.publish_many([group(k) for k in range(i * per, i * per + per)],
                                                tag, due):
            expect(by_user, seqs)

    window = r.window()
    lag = await offered_load(rate / per, seconds, fire, r.args.inflight)
    sent_wall = time.monotonic() - window.driver["at"]
    waited = await drain(subs, r.args.drain_timeout)
    fig = window.end()
    wall = fig["wall_s"]
    delivered = r.tally.received - received0
    result: dict[str, Any] = {
        "offered_publishes_per_s": rate, "batch": batch, "endpoint": producer.endpoint,
        "per_request": per, "offered_deliveries_per_s": rate * batch, "seconds": seconds,
        "sent_wall_s": round(sent_wall, 2), "drain_s": round(waited, 2),
        "delivered": delivered, "deliveries_per_s": round(delivered / wall, 1),
        "driver_lag_ms": ms(lag), "errors": producer.errors - errors0,
        **lat_summary(r.tally.latencies), "driver": fig["driver"],
    }
    cpu = fig["node_cpu_s"]
    if cpu is not None:
        result["server_cpu_s"] = round(cpu, 2)
        result["server_cpu_util"] = round(cpu / wall, 2)
        result["deliveries_per_cpu_s"] = round(delivered / cpu, 1) if cpu else None
        result["server_cpu_ms_per_delivery"] = round(cpu * 1000 / max(1, delivered), 4)
        result["rss_mib"] = round(fig["rss_kib"] / 1024, 1)
        if fig["support_cpu_s"] is not None:
            stack = cpu + fig["support_cpu_s"]
            result["support_cpu_s"] = round(fig["support_cpu_s"], 2)
            result["stack_cpu_ms_per_delivery"] = round(stack * 1000 / max(1, delivered), 4)
    return result


async def latency(r: Run) -> dict[str, Any]:
    a = r.args
    crowd = r.crowd()
    subs = await crowd.connect(users(r.prefix("lat"), a.subscribers), a.connect_concurrency)
    producer = r.server.producer(a.inflight)
    try:
        await step(r, subs, producer, a.rate, 1, min(2.0, a.seconds), "warm")  # not counted
        measured = await step(r, subs, producer, a.rate, 1, a.seconds, "lat")
    finally:
        await producer.close()
    correct = check(subs)
    await crowd.close()
    return {"subscribers": a.subscribers, "rate": a.rate, **measured, "correct": correct}


def held(s: dict[str, Any], missed: int, max_p99_ms: float) -> bool:
    """Whether a ladder step was sustained: no error, nothing missed, p99 and the driver's
    lag within the limit."""
    return (s["errors"] == 0 and missed == 0 and (s["p99_ms"] or 0) <= max_p99_ms
            and (s["driver_lag_ms"] or 0) <= max_p99_ms)


async def throughput(r: Run) -> dict[str, Any]:
    a = r.args
    crowd = r.crowd()
    subs = await crowd.connect(users(r.prefix("tp"), a.subscribers), a.connect_concurrency)
    producer = r.server.producer(a.inflight)
    steps: list[dict[str, Any]] = []
    best = broke = None
    try:
        for dps in a.steps:
            s = await step(r, subs, producer, dps / a.batch, a.batch, a.seconds, "tp")
            s["missed_so_far"] = check(subs)["missed"]
            steps.append(s)
            print(f"  throughput step {dps}/s: {s['deliveries_per_s']}/s p50 {s['p50_ms']} "
                  f"p99 {s['p99_ms']} errors {s['errors']} cpu {s.get('server_cpu_util')} "
                  f"driver {s['driver']['util']}", file=sys.stderr)
            if not held(s, s["missed_so_far"], a.max_p99_ms):
                broke = s
                break
            best = s
            await asyncio.sleep(1)
    finally:
        await producer.close()
    correct = check(subs)
    await crowd.close()
    return {"subscribers": a.subscribers, "batch": a.batch, "endpoint": producer.endpoint,
            "per_request": producer.per_request, "max_p99_ms": a.max_p99_ms,
            "steps": steps, "sustained": best, "ceiling_reached": broke is not None,
            "driver": best["driver"] if best else None,
            "driver_at_break": broke["driver"] if broke else None,
            "errors": producer.errors, "error_kinds": producer.error_kinds, "correct": correct}
