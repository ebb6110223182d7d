"""The scenarios: each is a fault injected into a running stream, and what must hold after it.

Socket scenarios (:func:`.run.run_sockets`) must end with every stored seq on every
socket exactly once and in order, counts right, no error answer stored, and no
error answer other than those listed as allowed (a PostgreSQL outage allows 503,
the contract's "retry later"; never 500). Push scenarios are in :mod:`.push`.
"""

from __future__ import annotations

import asyncio
import random
import signal
import time
from dataclasses import dataclass
from pathlib import Path

from .push import run_push
from .run import Context, Fault, Size, run_sockets
from .servers import Postgres
from .verdict import Figures, failures


async def node_signal(ctx: Context, sig: int) -> None:
    node = ctx.cluster.nodes[0]
    node.signal(sig)
    if sig == signal.SIGTERM:
        code = await node.wait(30)
        ctx.notes.append(f"{node.name} exited with {code} after SIGTERM")
    ctx.fault_end = time.monotonic()


async def node_kill(ctx: Context) -> None:
    await node_signal(ctx, signal.SIGKILL)


async def node_kill_partition(ctx: Context) -> None:
    """SIGKILL a node; its sockets find no other node for 3 s, so they miss enough for a reset."""
    node = ctx.cluster.nodes[0]
    for s in ctx.sockets:
        if s.node is node:
            s.hold_until = time.monotonic() + 3.0
    await node_signal(ctx, signal.SIGKILL)


async def node_term(ctx: Context) -> None:
    await node_signal(ctx, signal.SIGTERM)


async def node_stop(ctx: Context) -> None:
    """SIGSTOP a node for 1-3 s, then SIGCONT: its sockets stay open and must catch up."""
    node = ctx.cluster.nodes[0]
    pause = random.uniform(1.0, 3.0)
    node.signal(signal.SIGSTOP)
    await asyncio.sleep(pause)
    node.signal(signal.SIGCONT)
    ctx.notes.append(f"{node.name} stopped for {pause:.1f} s")
    ctx.fault_end = time.monotonic()


async def _redis_restart(ctx: Context, wipe: bool) -> None:
    ctx.cluster.redis.kill()
    await asyncio.sleep(0.5)
    await asyncio.to_thread(ctx.cluster.redis.start, wipe=wipe)
    ctx.fault_end = time.monotonic()


async def redis_keep(ctx: Context) -> None:
    await _redis_restart(ctx, wipe=False)


async def redis_wipe(ctx: Context) -> None:
    await _redis_restart(ctx, wipe=True)


async def _pg_outage(ctx: Context, mode: str) -> None:
    pg = ctx.cluster.pg
    await asyncio.to_thread(pg.stop, mode)
    await asyncio.sleep(ctx.size.pg_outage)
    await asyncio.to_thread(pg.start)
    ctx.fault_end = time.monotonic()


async def pg_fast(ctx: Context) -> None:
    await _pg_outage(ctx, "fast")


async def pg_immediate(ctx: Context) -> None:
    await _pg_outage(ctx, "immediate")


async def storm(ctx: Context) -> None:
    """Cut every socket's connection at once; they all come back within a second."""
    for s in ctx.sockets:
        s.drop()
    ctx.fault_end = time.monotonic()
    deadline = ctx.fault_end + 30
    while not all(s.connected.is_set() and s.connects > 1 for s in ctx.sockets):
        if time.monotonic() > deadline:
            break
        await asyncio.sleep(0.05)
    back = time.monotonic() - ctx.fault_end
    ctx.notes.append(f"{len(ctx.sockets)} sockets back in {back:.2f} s")


@dataclass(frozen=True)
class Scenario:
    name: str
    what: str
    fault: Fault | str  # a socket fault, or the name of a push fault (see :mod:`.push`)
    allowed_errors: tuple[str, ...] = ()
    storm: bool = False
    env: tuple[tuple[str, str], ...] = ()  # node settings of this scenario

    @property
    def push(self) -> bool:
        return isinstance(self.fault, str)

    async def run(self, folder: Path, pg: Postgres, size: Size) -> Figures:
        if isinstance(self.fault, str):
            return await run_push(folder, pg, size, self.fault)
        return await run_sockets(folder, pg, size, self.fault, env=dict(self.env),
                                 sockets=size.storm if self.storm else None)

    def failures(self, figures: Figures) -> list[str]:
        return failures(figures, allowed_errors=self.allowed_errors)


SCENARIOS = [
    Scenario("node-sigkill", "SIGKILL one of three nodes; its sockets reconnect elsewhere",
             node_kill),
    Scenario("node-sigkill-reset", "SIGKILL a node whose sockets come back 3 s later, with"
             " TIDINGS_REPLAY_LIMIT=1: resets, and refetches through the inbox API",
             node_kill_partition,
             env=(("TIDINGS_REPLAY_LIMIT", "1"),)),
    Scenario("node-sigterm", "SIGTERM one node (graceful: 1012 closes); sockets move",
             node_term),
    Scenario("node-sigstop", "SIGSTOP one node for 1-3 s, then SIGCONT", node_stop),
    Scenario("redis-restart-keep", "kill -9 Redis, restart it on its AOF data", redis_keep),
    Scenario("redis-restart-wipe", "kill -9 Redis, restart it with its data folder wiped",
             redis_wipe),
    Scenario("pg-stop-fast", "pg_ctl stop -m fast; start it again after the outage", pg_fast,
             allowed_errors=("503",)),
    Scenario("pg-stop-immediate", "pg_ctl stop -m immediate (as a crash); start it again",
             pg_immediate, allowed_errors=("503",)),
    Scenario("reconnect-storm", "cut all 1,000 sockets at once; they reconnect with since"
             " within a second", storm, storm=True),
    Scenario("push-redis-wipe", "push run to offline users; kill -9 Redis, restart it empty",
             "redis-wipe"),
    Scenario("push-worker-kill", "push run with two workers; SIGKILL one mid-run",
             "worker-kill"),
]
BY_NAME = {s.name: s for s in SCENARIOS}
