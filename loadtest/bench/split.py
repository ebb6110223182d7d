"""The sockets of one scenario held in this process or split over holder processes.

:func:`start_parts` prepares ``total`` users' sockets, either here (one
:class:`LocalPart`) or over ``procs`` holder processes (:class:`ProcPart`, each
``python -m loadtest.bench.holder`` with a contiguous share of the users and loopback
source addresses of its own, started and ready before anything is measured), so
that receiving a large broadcast (or holding more sockets than one process may
open) is not bound by one Python process; :func:`connect_parts` connects them all.
Both kinds answer the same calls: ``connect``, ``wait`` for a tag on every socket,
``take`` its arrival times, ``check`` correctness against the seqs published,
``close``. Holder processes are
registered with the :class:`~loadtest.bench.procs.DriverCpu`, so their CPU counts as
the driver's.
"""

from __future__ import annotations

import asyncio
import sys
from typing import Any

import orjson

from .machine import ROOT
from .procs import DriverCpu
from .sockets import Crowd, Sub, Tally, check, users
from .stats import share
from .targets import Endpoint


class LocalPart:
    """The sockets held by this process."""

    def __init__(self, crowd: Crowd, names: list[str], concurrency: int):
        self.crowd = crowd
        self.names = names
        self.concurrency = concurrency
        self.subs: list[Sub] = []

    async def connect(self) -> dict[str, Any]:
        c = self.crowd
        self.subs = await c.connect(self.names, self.concurrency)
        return {"connected": len(c.connect_times), "errors": c.connect_errors,
                "sources": len(c.sessions), "connect_times": c.connect_times}

    async def wait(self, tag: str, within: float) -> int:
        return await self.crowd.tally.wait_tag(tag, len(self.subs), within)

    async def take(self, tag: str) -> list[float]:
        return self.crowd.tally.by_tag.pop(tag, [])

    async def check(self, expected: dict[str, int]) -> dict[str, Any]:
        for sub in self.subs:
            sub.expected = expected.get(sub.user, sub.expected)
        return check(self.subs)

    async def close(self) -> int:
        still = self.crowd.open_count()
        await self.crowd.close()
        return still


class ProcPart:
    """The sockets held by one holder process, driven over its stdin and stdout."""

    def __init__(self, proc: asyncio.subprocess.Process, names: set[str], cpu: DriverCpu):
        self.proc = proc
        self.names = names
        self.cpu = cpu

    @classmethod
    async def start(cls, config: dict[str, Any], cpu: DriverCpu) -> ProcPart:
        proc = await asyncio.create_subprocess_exec(
            sys.executable, "-m", "loadtest.bench.holder", orjson.dumps(config).decode(),
            cwd=ROOT, stdin=asyncio.subprocess.PIPE, stdout=asyncio.subprocess.PIPE,
            limit=2 ** 26)
        cpu.add(proc.pid)
        names = set(users(config["prefix"], config["count"], config["first"]))
        return cls(proc, names, cpu)

    async def read(self) -> dict[str, Any]:
        assert self.proc.stdout is not None
        line = await self.proc.stdout.readline()
        if not line:
            raise RuntimeError(f"socket holder {self.proc.pid} exited")
        return orjson.loads(line)

    async def call(self, **cmd: Any) -> dict[str, Any]:
        assert self.proc.stdin is not None
        self.proc.stdin.write(orjson.dumps(cmd) + b"\n")
        await self.proc.stdin.drain()
        return await self.read()

    async def connect(self) -> dict[str, Any]:
        return await self.call(cmd="connect")

    async def wait(self, tag: str, within: float) -> int:
        return (await self.call(cmd="wait", tag=tag, within=within))["have"]

    async def take(self, tag: str) -> list[float]:
        return (await self.call(cmd="take", tag=tag))["arrivals"]

    async def check(self, expected: dict[str, int]) -> dict[str, Any]:
        mine = {u: s for u, s in expected.items() if u in self.names}
        return await self.call(cmd="check", expected=mine)

    async def close(self) -> int:
        try:
            still = (await self.call(cmd="close"))["open"]
        finally:
            await self.proc.wait()
            self.cpu.remove(self.proc.pid)
        return still

    def kill(self) -> None:
        if self.proc.returncode is None:
            self.proc.kill()


Part = LocalPart | ProcPart


async def start_parts(endpoint: Endpoint, prefix: str, total: int, procs: int,
                      tally: Tally, cpu: DriverCpu, *, per_source: int, concurrency: int,
                      uvloop: bool) -> list[Part]:
    """``total`` users' sockets, ready to connect: here (``procs`` 1) or over ``procs``
    holder processes, each started and ready when this returns."""
    if procs <= 1:
        crowd = Crowd(endpoint, tally, sources=64, per_source=per_source)
        return [LocalPart(crowd, users(prefix, total), concurrency)]
    parts: list[ProcPart] = []
    source = 1  # 127.0.0.2 on: 127.0.0.1 stays for this process's own sockets
    try:
        for i in range(procs):
            first, count = share(total, procs, i)
            config = {"endpoint": {"kind": endpoint.kind, "ws_url": endpoint.ws_url,
                                   "secret": endpoint.secret},
                      "prefix": prefix, "first": first, "count": count,
                      "first_source": source, "per_source": per_source,
                      "concurrency": max(1, concurrency // procs), "uvloop": uvloop}
            source += max(1, -(-count // per_source))
            parts.append(await ProcPart.start(config, cpu))
        await asyncio.gather(*(p.read() for p in parts))
    except BaseException:
        for p in parts:
            p.kill()
        raise
    return list(parts)


async def connect_parts(parts: list[Part]) -> dict[str, Any]:
    """Connect every part's sockets; the connect figures (connected, errors, sources,
    times) of all parts together."""
    said = await asyncio.gather(*(p.connect() for p in parts))
    return {"connected": sum(s["connected"] for s in said),
            "errors": sum(s["errors"] for s in said), "sources": sum(s["sources"] for s in said),
            "connect_times": [t for s in said for t in s["connect_times"]]}


async def close_parts(parts: list[Part]) -> int:
    """Close every part; returns how many sockets were still open just before."""
    return sum(await asyncio.gather(*(p.close() for p in parts)))
