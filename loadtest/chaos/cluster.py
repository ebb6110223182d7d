"""One scenario's cluster: a fresh database on the shared PostgreSQL, its own Redis, three nodes.

The database is cloned from a template migrated once (``tidings migrate``), so a
cluster starts in about the time its node processes take to import. Push
workers, when asked for, run as ``tidings worker`` processes of their own (the
nodes then run none), so a scenario can kill one. :meth:`Cluster.stop` stops
every process the cluster started, whatever state the scenario left it in.
"""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import re
import secrets
import signal
import subprocess
import sys
from collections.abc import AsyncIterator
from pathlib import Path

import asyncpg

from .servers import Postgres, Proc, Redis

JWT_SECRET = "chaos-secret-" + "c" * 40
API_KEY = "chaos-producer-key"
TEMPLATE = "chaos_template"
_EXCEPTION = re.compile(r"^[\w.]+(Error|Exception|Exit|Interrupt)\b")  # a traceback's last line


def database_url(pg: Postgres, name: str) -> str:
    return pg.url.rsplit("/", 1)[0] + "/" + name


async def prepare(pg: Postgres) -> None:
    """Create and migrate the template database (once per PostgreSQL)."""
    conn = await asyncpg.connect(pg.url)
    try:
        await conn.execute(f"CREATE DATABASE {TEMPLATE}")
    finally:
        await conn.close()
    env = {"TIDINGS_DATABASE_URL": database_url(pg, TEMPLATE), "TIDINGS_REDIS_URL": "redis://x"}
    await asyncio.to_thread(subprocess.run, [sys.executable, "-m", "tidings", "migrate"],
                            env=_base_env() | env, check=True, stdout=subprocess.DEVNULL)


def _base_env() -> dict[str, str]:
    import os

    return {k: v for k, v in os.environ.items() if not k.startswith("TIDINGS_")}


class Cluster:
    def __init__(self, folder: Path, pg: Postgres, *, nodes: int = 3,
                 push_config: str | None = None, workers: int = 0,
                 env: dict[str, str] | None = None):
        self.folder = folder
        self.pg = pg
        self.db_name = f"chaos_{secrets.token_hex(4)}"
        self.database_url = database_url(pg, self.db_name)
        self.redis = Redis(folder / "redis")
        self.node_count = nodes
        self.worker_count = workers
        self.env = {
            "TIDINGS_DATABASE_URL": self.database_url, "TIDINGS_REDIS_URL": self.redis.url,
            "TIDINGS_JWT_SECRET": JWT_SECRET, "TIDINGS_API_KEYS": API_KEY,
            "TIDINGS_MIGRATE": "false", "TIDINGS_RATE_LIMIT_USER": "0",
            "TIDINGS_PUSH_WORKERS": "false", "TIDINGS_MAX_SOCKETS_PER_USER": "100",
            **({"TIDINGS_PUSH_CONFIG": push_config} if push_config else {}),
            **(env or {}),
        }
        self.nodes: list[Proc] = []
        self.workers: list[Proc] = []
        self._names = itertools.count(1)

    async def start(self) -> Cluster:
        self.folder.mkdir(parents=True, exist_ok=True)
        conn = await asyncpg.connect(self.pg.url)
        try:
            await conn.execute(f"CREATE DATABASE {self.db_name} TEMPLATE {TEMPLATE}")
        finally:
            await conn.close()
        self.redis.start()
        self.nodes = [Proc(f"node{i + 1}", self.folder, self.env)
                      for i in range(self.node_count)]
        for node in self.nodes:
            node.spawn()
        await asyncio.gather(*(node.ready() for node in self.nodes))
        for _ in range(self.worker_count):
            await self.start_worker()
        return self

    async def start_worker(self) -> Proc:
        """A push worker process (``tidings worker``), counted ready once it says so."""
        worker = Proc(f"worker{next(self._names)}", self.folder, self.env, command="worker")
        worker.spawn()
        self.workers.append(worker)
        deadline = asyncio.get_running_loop().time() + 60
        while "push worker running" not in worker.log.read_text(errors="replace"):
            if worker.proc is not None and worker.proc.poll() is not None:
                raise RuntimeError(f"{worker.name} exited; see {worker.log}")
            if asyncio.get_running_loop().time() > deadline:
                raise RuntimeError(f"{worker.name} did not start")
            await asyncio.sleep(0.05)
        return worker

    def alive(self) -> list[Proc]:
        """Nodes running and not stopped: where sockets reconnect."""
        return [n for n in self.nodes if n.alive]

    def running(self) -> list[Proc]:
        """Nodes not dead, stopped ones included: where publishes go (a stopped node's
        answers come late, as a load balancer's producer would see)."""
        return [n for n in self.nodes if n.proc is not None and n.proc.poll() is None]

    async def connect(self) -> asyncpg.Connection:
        return await asyncpg.connect(self.database_url)

    async def stop(self) -> None:
        for proc in [*self.nodes, *self.workers]:
            if proc.proc is not None and proc.proc.poll() is None:
                if proc.paused:
                    proc.signal(signal.SIGCONT)
                proc.signal(signal.SIGTERM)
        for proc in [*self.nodes, *self.workers]:
            if proc.proc is not None and await proc.wait(10) is None:
                proc.kill()
        self.redis.kill()

    def problems(self) -> list[str]:
        """Per process: tracebacks logged and the last exception line, for the report."""
        out = []
        for proc in [*self.nodes, *self.workers]:
            lines = proc.log.read_text(errors="replace").splitlines() if proc.log.exists() else []
            tracebacks = sum(line.startswith("Traceback") for line in lines)
            if tracebacks:
                last = next((line for line in reversed(lines) if _EXCEPTION.match(line)), "")
                out.append(f"{proc.name}: {tracebacks} tracebacks, last: {last[:160]}")
        return out


@contextlib.asynccontextmanager
async def private_postgres(folder: Path) -> AsyncIterator[Postgres]:
    """A PostgreSQL of its own in ``folder``, with the migrated template; stopped at the end."""
    pg = Postgres(folder)
    await asyncio.to_thread(pg.init)
    try:
        await asyncio.to_thread(pg.start)
        await prepare(pg)
        yield pg
    finally:
        await asyncio.to_thread(pg.stop, "immediate")
