"""The ``idle`` scenario: hold C authenticated sockets; connects/s, CPU per connect, RSS per socket.

After a warm-up of 50 sockets (pools and code paths), the node's RSS is read, then
C sockets connect (here, or split over ``--driver-procs`` holder processes: one
process may open only as many sockets as its open-files limit allows) and are held
for ``--hold`` seconds. Memory per socket is the node's RSS growth over the sockets
still open; CPU per connect is the node's CPU in the connect phase over the sockets
connected. The driver's CPU is measured in the connect phase, where it works hardest.
"""

from __future__ import annotations

import asyncio
from typing import Any

from .run import Run
from .sockets import users
from .split import close_parts, connect_parts, start_parts
from .stats import ms, pct


async def run(r: Run) -> dict[str, Any]:
    a = r.args
    warm = r.crowd()
    await warm.connect(users(r.prefix("idle-warm"), 50), 50)
    await warm.close()
    await asyncio.sleep(2)
    before = r.server.sample()
    parts = await start_parts(
        r.server.endpoint, r.prefix("idle"), a.sockets, a.driver_procs, r.tally, r.cpu,
        per_source=a.per_source, concurrency=a.connect_concurrency, uvloop=a.uvloop)
    window = r.window()
    conn = await connect_parts(parts)
    connect = window.end()
    await asyncio.sleep(a.hold)
    after = r.server.sample()
    open_now = await close_parts(parts)
    connected = conn["connected"]
    result: dict[str, Any] = {
        "sockets": a.sockets, "connected": connected, "connect_errors": conn["errors"],
        "open_after_hold": open_now, "held_s": a.hold,
        "connect_wall_s": round(connect["wall_s"], 2),
        "connects_per_s": round(connected / connect["wall_s"], 1),
        "connect_p50_ms": ms(pct(conn["connect_times"], 50)),
        "connect_p99_ms": ms(pct(conn["connect_times"], 99)),
        "sources": conn["sources"], "driver_procs": a.driver_procs,
        "driver": connect["driver"],
    }
    if before and after and connect["node_cpu_s"] is not None:
        result.update({
            "rss_before_mib": round(before["rss_kib"] / 1024, 1),
            "rss_after_mib": round(after["rss_kib"] / 1024, 1),
            "kib_per_socket": round((after["rss_kib"] - before["rss_kib"]) / max(1, open_now), 2),
            "server_cpu_ms_per_connect": round(
                connect["node_cpu_s"] * 1000 / max(1, connected), 3),
        })
    result["correct"] = {"missed": 0, "duplicates": 0, "order_ok": True,
                         "all_open": open_now == a.sockets}
    return result
