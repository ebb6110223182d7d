#!/usr/bin/env python
"""What the Prometheus metrics cost on a node's hot paths, measured in process.

Each hook of ``tidings.services.metrics`` is timed alone (the fastest of 15
repeats, which a busy machine disturbs least), beside the work it sits on: a
hub dispatching one event to 1 and to 5,000 sockets (with metrics off), and
one scrape of a node holding 5,000 sockets. ``docs/benchmarks.md`` ("Metrics")
turns these into shares of a publish and of a fan-out. Run from a checkout::

    PYTHONPATH=server python loadtest/metrics_cost.py
"""

from __future__ import annotations

import asyncio
import time
import timeit
from typing import Any

from tidings import config
from tidings.core import events
from tidings.core.replies import Counts
from tidings.gateway.connection import Connection
from tidings.gateway.hub import Hub
from tidings.services.metrics import Metrics, Recorder
from tidings.store.backlog import Backlog

REPEAT = 15
CONTENT = {"message": "hello", "created_at": "t", "updated_at": "t"}


class _Transport:
    """A socket's transport that takes every frame at once."""

    def write(self, data: bytes) -> None:
        pass

    def is_closing(self) -> bool:
        return False

    def get_write_buffer_size(self) -> int:
        return 0


def fastest(stmt: str, number: int, names: dict[str, Any], setup: str = "pass") -> float:
    """Seconds per run of ``stmt``: the fastest of REPEAT rounds of ``number`` runs."""
    return min(timeit.repeat(stmt, setup=setup, number=number, repeat=REPEAT,
                             globals=names)) / number


def hub_with(sockets: int, recorder: Recorder) -> Hub:
    hub = Hub(config.load({}), realtime=None, metrics=recorder)  # type: ignore[arg-type]
    for i in range(sockets):
        conn = Connection(None, _Transport(), f"u{i}", 256)  # type: ignore[arg-type]
        hub.rooms.add(conn)
        conn.session.joined(0, Counts(0, 0, 0), None, 1000)
    return hub


def dispatch(sockets: int, runs: int = 10) -> float:
    """Seconds for the hub to hand one stored notification to ``sockets`` sockets."""
    hub = hub_with(sockets, Recorder())
    evs = iter([events.notification_event(CONTENT, [
        [f"u{i}", i, f"{seq}-{i}", seq, seq, seq, seq]
        for i in range(sockets)], None) for seq in range(1, runs * REPEAT + 1)])
    return min(timeit.repeat(lambda: hub.dispatch(next(evs)), number=runs,
                             repeat=REPEAT)) / runs


async def scrape(sockets: int, runs: int = 200) -> float:
    """CPU seconds of one scrape of a node holding ``sockets`` sockets."""
    metrics = Metrics()
    hub = hub_with(sockets, metrics)
    metrics.watch_sockets(lambda: (hub.rooms.socket_count(), len(hub.rooms)))

    async def backlog() -> Backlog:
        return Backlog(0, 0.0, 0)

    metrics.watch_backlog(backlog)
    metrics.known_providers(["apns", "fcm"])
    started = time.process_time()
    for _ in range(runs):
        await metrics.exposition()
    return (time.process_time() - started) / runs


def main() -> None:
    m, off = Metrics(), Recorder()
    event = events.notification_event(CONTENT, [["u", 1, "x", 1, 1, 1, 1]], None)
    names = {"m": m, "off": off, "ev": event, "perf": time.perf_counter}
    rows = [
        ("delivered(event, sockets), once per event dispatched",
         fastest("m.delivered(ev, 3)", 200_000, names)),
        ("the same with metrics off (Recorder)", fastest("off.delivered(ev, 3)", 200_000, names)),
        ("sockets += len(room), once per recipient with a socket here",
         fastest("s += len(room)", 1_000_000, {}, setup="s = 0; room = (1, 2)")),
        ("published(): two clock reads, two histograms, once per publish",
         fastest("a = perf(); m.published(perf() - a, 5)", 100_000, names)),
        ("pushed(): two clock reads, a counter, a histogram, once per send",
         fastest("a = perf(); m.pushed('apns', 'delivered', perf() - a)", 100_000, names)),
        ("replayed(rows), once per fetch", fastest("m.replayed(10)", 200_000, names)),
        ("dependency_error(), once per failed call",
         fastest("m.dependency_error('postgres')", 200_000, names)),
    ]
    for what, seconds in rows:
        print(f"{what:66s} {seconds * 1e9:9.0f} ns")
    for sockets in (1, 5000):
        print(f"{f'Hub.dispatch of one notification to {sockets} socket(s)':66s}"
              f" {dispatch(sockets) * 1e6:9.1f} us")
    print(f"{'one scrape of a node holding 5,000 sockets (CPU)':66s}"
          f" {asyncio.run(scrape(5000)) * 1e3:9.2f} ms")


if __name__ == "__main__":
    main()
