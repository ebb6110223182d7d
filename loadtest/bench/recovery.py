"""The ``recovery`` scenario (Tidings only): reconnect with N missed; time until the last replayed.

For each of ``--repeat`` users: close the socket, publish ``--missed`` notifications
to the user, reconnect with ``?since=`` the last seq seen, and time until the socket
has the last one. The measured window of each reconnect gives the driver's CPU.
"""

from __future__ import annotations

import asyncio
import statistics
import time
from typing import Any

from .procs import merge_driver
from .rates import expect
from .run import Run
from .sockets import check, users
from .stats import ms


async def run(r: Run) -> dict[str, Any]:
    a = r.args
    crowd = r.crowd()
    subs = await crowd.connect(users(r.prefix("rec"), a.repeat), 8)
    producer = r.server.producer(32)
    ep = r.server.endpoint
    reps = []
    try:
        for sub in subs:
            await sub.close()
            sem = asyncio.Semaphore(32)
            by_user = {sub.user: sub}

            async def one(i: int, sem: asyncio.Semaphore = sem,
                          by_user: dict = by_user) -> None:
                async with sem:
                    expect(by_user, await producer.publish(list(by_user), f"rec{i}",
                                                           time.monotonic()))

            await asyncio.gather(*(one(i) for i in range(a.missed)))
            since = sub.last_seq
            r.tally.reset()
            window = r.window()
            await sub.connect(crowd.session_for(0), ep.url_for(sub.user), ep.token(sub.user),
                              since=since)
            while sub.last_seq < sub.expected and window.driver["at"] + 30 > time.monotonic():  # noqa: ASYNC110
                await asyncio.sleep(0.001)
            fig = window.end()
            reps.append({"missed": sub.expected - since, "replayed": sub.last_seq - since,
                         "ms": ms(fig["wall_s"]), "driver": fig["driver"]})
    finally:
        await producer.close()
    correct = check(subs)
    await crowd.close()
    times = [x["ms"] for x in reps]
    return {"missed_per_reconnect": a.missed, "repeats": reps,
            "median_ms": statistics.median(times) if times else None,
            "driver": merge_driver([x["driver"] for x in reps]),
            "errors": producer.errors, "correct": correct}
