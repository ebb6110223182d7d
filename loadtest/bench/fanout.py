"""The ``fanout`` scenario: one publish to R connected recipients; when the first and the last hear.

The R sockets are held here or split over ``--driver-procs`` holder processes
(receiving a 10,000-socket broadcast in one Python process makes the driver the
bound). Each of ``--repeat`` broadcasts is timed from just before its POST
(``time.monotonic()``) to each socket's arrival, read on the same system-wide clock
in whichever process holds the socket: ``first_ms``, ``p50_ms`` and ``last_ms``. The
measured window (node, PostgreSQL/Redis and driver CPU) runs from the POST until
every holder has the broadcast on every socket.
"""

from __future__ import annotations

import asyncio
import statistics
import time
from typing import Any

from .procs import merge_driver
from .run import Run
from .sockets import merge_checks, users
from .split import close_parts, connect_parts, start_parts
from .stats import ms, pct

#: How long a broadcast may take before its missing sockets are given up on.
TIMEOUT = 30.0


async def run(r: Run) -> dict[str, Any]:
    a = r.args
    prefix = r.prefix("fan")
    r.tally.track_tags = True
    parts = await start_parts(
        r.server.endpoint, prefix, a.recipients, a.driver_procs, r.tally, r.cpu,
        per_source=a.per_source, concurrency=a.connect_concurrency, uvloop=a.uvloop)
    conn = await connect_parts(parts)
    names = users(prefix, a.recipients)
    producer = r.server.producer(16)
    expected: dict[str, int] = {}
    reps = []
    try:
        for rep in range(a.repeat):
            tag = f"fan{rep}"
            window = r.window()
            t0 = time.monotonic()
            seqs = await producer.publish(names, tag, t0)
            t_post = time.monotonic() - t0
            await asyncio.gather(*(p.wait(tag, TIMEOUT if seqs else 2.0) for p in parts))
            fig = window.end()
            arrivals = [t - t0 for got in await asyncio.gather(*(p.take(tag) for p in parts))
                        for t in got]
            expected.update(seqs or {})
            reps.append({
                "ok": seqs is not None, "post_ms": ms(t_post), "delivered": len(arrivals),
                "first_ms": ms(min(arrivals)) if arrivals else None,
                "p50_ms": ms(pct(arrivals, 50)),
                "last_ms": ms(max(arrivals)) if arrivals else None,
                "server_cpu_ms": None if fig["node_cpu_s"] is None
                else round(fig["node_cpu_s"] * 1000, 1),
                "support_cpu_ms": None if fig["support_cpu_s"] is None
                else round(fig["support_cpu_s"] * 1000, 1),
                "driver": fig["driver"],
            })
            await asyncio.sleep(0.5)
        correct = merge_checks(list(await asyncio.gather(*(p.check(expected) for p in parts))))
    finally:
        r.tally.track_tags = False
        await producer.close()
        await close_parts(parts)

    def median(key: str) -> float | None:
        known = [x[key] for x in reps if x[key] is not None]
        return round(statistics.median(known), 2) if known else None

    return {"recipients": a.recipients, "connected": conn["connected"],
            "driver_procs": a.driver_procs, "repeats": reps,
            "first_median_ms": median("first_ms"), "last_median_ms": median("last_ms"),
            "post_median_ms": median("post_ms"),
            "driver": merge_driver([x["driver"] for x in reps]),
            "errors": producer.errors, "correct": correct}
