#!/usr/bin/env python
"""Benchmark driver for Tidings: exact numbers for sizing a node.

It starts a server itself (``tidings serve`` in a subprocess: embedded
PostgreSQL and Redis by default, or the ``--database-url``/``--redis-url``
given, with ``--workers`` processes) or targets a running one (``--url`` with
``--jwt-secret`` and ``--api-key``), then runs the scenarios named:

- ``idle``: C authenticated sockets held; connect rate; server RSS per socket.
- ``fanout``: one publish to R connected recipients; time until the last has it.
- ``throughput``: distinct notifications at increasing offered rates until
  latency or errors break; deliveries per second and per server CPU-second.
- ``latency``: a fixed offered rate of single-recipient publishes; p50/p95/p99/max.
- ``recovery``: reconnect with N missed; time until the last replayed one.

``--target nchan`` runs ``idle``, ``fanout`` and ``latency`` through the same
code against nginx with the nchan module instead (``loadtest/nchan.py``: one
worker, a channel per user, no auth, no database), for a ratio column measured
in the same sitting.

Every scenario checks correctness as well: each socket must see its seqs once
and in order (no duplicate, no gap), and every published notification must
arrive. Results go to ``<out>.json`` and ``<out>.md`` (default under
``loadtest/results/``). Only loopback addresses are used. Examples::

    python loadtest/bench.py idle fanout latency recovery throughput
    python loadtest/bench.py --database-url postgresql://postgres@127.0.0.1:5432/bench \\
        --redis-url redis://127.0.0.1:6379/7 idle --sockets 50000
    python loadtest/bench.py --url http://127.0.0.1:8000 --jwt-secret S --api-key K latency
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import ipaddress
import json
import os
import platform
import resource
import secrets
import shutil
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Awaitable, Callable, Iterable
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import aiohttp
import jwt
import orjson

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))
import nchan  # noqa: E402  (beside this file)

WS_PATH = "/ws/me/notifications"
PUBLISH_PATH = "/api/v1/notifications"
CLK = os.sysconf("SC_CLK_TCK")
PAGE_KIB = os.sysconf("SC_PAGE_SIZE") / 1024


# -- small helpers ----------------------------------------------------------------------

def pct(values: list[float], q: float) -> float | None:
    if not values:
        return None
    s = sorted(values)
    return s[min(len(s) - 1, max(0, round(q / 100 * (len(s) - 1))))]


def ms(seconds: float | None) -> float | None:
    return None if seconds is None else round(seconds * 1000, 2)


def lat_summary(values: list[float]) -> dict[str, Any]:
    return {"n": len(values), "p50_ms": ms(pct(values, 50)), "p95_ms": ms(pct(values, 95)),
            "p99_ms": ms(pct(values, 99)), "max_ms": ms(max(values) if values else None)}


def proc_stat(pid: int) -> tuple[float, float] | None:
    """(RSS KiB, CPU seconds) of one process, or None if it is gone."""
    try:
        with open(f"/proc/{pid}/statm") as f:
            rss = int(f.read().split()[1]) * PAGE_KIB
        with open(f"/proc/{pid}/stat") as f:
            fields = f.read().rsplit(")", 1)[1].split()
        return rss, (int(fields[11]) + int(fields[12])) / CLK
    except (FileNotFoundError, ProcessLookupError, IndexError):
        return None


def children(pid: int) -> list[int]:
    out: list[int] = []
    with contextlib.suppress(FileNotFoundError):
        for task in os.listdir(f"/proc/{pid}/task"):
            with open(f"/proc/{pid}/task/{task}/children") as f:
                out += [int(p) for p in f.read().split()]
    return out


def cmdline(pid: int) -> str:
    try:
        with open(f"/proc/{pid}/cmdline", "rb") as f:
            return f.read().replace(b"\0", b" ").decode(errors="replace")
    except FileNotFoundError:
        return ""


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def raise_nofile() -> int:
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    want = 1_048_576
    for limit in (want, hard):
        with contextlib.suppress(ValueError, OSError):
            resource.setrlimit(resource.RLIMIT_NOFILE, (limit, max(limit, hard)))
            return limit
    return soft


def loopback_only(url: str) -> None:
    host = urlsplit(url).hostname or ""
    try:
        ok = ipaddress.ip_address(host).is_loopback
    except ValueError:
        ok = host == "localhost"
    if not ok:
        raise SystemExit(f"refusing a non-loopback target: {url}")


# -- the server under test -----------------------------------------------------------------

class Server:
    """A Tidings server: started here (and stopped by pid), or one already running."""

    def __init__(self, args: argparse.Namespace):
        self.args = args
        self.proc: subprocess.Popen[bytes] | None = None
        self.tmp: str | None = None
        if args.url:
            loopback_only(args.url)
            self.url = args.url.rstrip("/")
            if not (args.jwt_secret and args.api_key):
                raise SystemExit("--url needs --jwt-secret and --api-key")
            self.secret, self.key = args.jwt_secret, args.api_key
        else:
            self.url = ""
            self.secret = args.jwt_secret or secrets.token_urlsafe(32)
            self.key = args.api_key or secrets.token_urlsafe(16)
        self.ws_url = ""

    async def start(self) -> None:
        self.spawn()
        await self.ready()

    def spawn(self) -> None:
        a = self.args
        if not a.url:
            port = free_port()
            self.tmp = tempfile.mkdtemp(prefix="tidings-bench-")
            env = dict(os.environ)
            env.update({
                "TIDINGS_HOST": "127.0.0.1", "TIDINGS_PORT": str(port),
                "TIDINGS_WORKERS": str(a.workers), "TIDINGS_JWT_SECRET": self.secret,
                "TIDINGS_API_KEYS": self.key, "TIDINGS_DATA_DIR": self.tmp,
                "TIDINGS_RATE_LIMIT_USER": "0", "TIDINGS_RATE_LIMIT_PRODUCER": "0",
                "TIDINGS_LOG_LEVEL": "WARNING", "TIDINGS_DEV": "false",
                "TIDINGS_WS_SEND_QUEUE": str(a.send_queue),
            })
            for name in ("database_url", "redis_url"):
                value = getattr(a, name)
                if value:
                    env[f"TIDINGS_{name.upper()}"] = value
                else:
                    env.pop(f"TIDINGS_{name.upper()}", None)
                    env.pop(name.upper(), None)
            log = open(Path(self.tmp) / "server.log", "wb")  # noqa: SIM115, RUF100
            self.proc = subprocess.Popen([sys.executable, "-m", "tidings", "serve"], env=env,
                                         stdout=log, stderr=subprocess.STDOUT)
            self.url = f"http://127.0.0.1:{port}"
        self.ws_url = self.url.replace("http", "ws", 1) + WS_PATH

    async def ready(self) -> None:
        deadline = time.monotonic() + 120
        async with aiohttp.ClientSession() as s:
            while True:
                if self.proc is not None and self.proc.poll() is not None:
                    raise SystemExit(f"server exited: {self.log_tail()}")
                with contextlib.suppress(aiohttp.ClientError, OSError):
                    async with s.get(self.url + "/readyz") as r:
                        if r.status == 200 and len(self.node_pids()) >= self.expected_nodes():
                            break
                if time.monotonic() > deadline:
                    raise SystemExit(f"server not ready: {self.log_tail()}")
                await asyncio.sleep(0.2)
        await asyncio.sleep(1.0)

    def expected_nodes(self) -> int:
        return 0 if self.proc is None else self.args.workers

    def log_tail(self) -> str:
        if self.tmp is None:
            return ""
        with contextlib.suppress(FileNotFoundError):
            return (Path(self.tmp) / "server.log").read_text(errors="replace")[-3000:]
        return ""

    def node_pids(self) -> list[int]:
        """Processes that serve sockets (not the embedded PostgreSQL or Redis)."""
        if self.args.server_pid:
            return list(self.args.server_pid)
        if self.proc is None:
            return []
        if self.args.workers == 1:
            return [self.proc.pid]
        return [p for p in children(self.proc.pid) if "_node" in cmdline(p)]

    def sample(self) -> dict[str, float] | None:
        """Summed RSS (KiB) and CPU seconds of the node processes, None if unknown."""
        pids = self.node_pids()
        if not pids:
            return None
        stats = [s for s in map(proc_stat, pids) if s is not None]
        return {"rss_kib": sum(s[0] for s in stats), "cpu_s": sum(s[1] for s in stats)}

    def stop(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(30)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        if self.tmp is not None and not self.args.keep:
            shutil.rmtree(self.tmp, ignore_errors=True)

    #: The server greets each socket (counts) once it is live.
    greets = True

    def ws_url_for(self, user: str) -> str:
        return self.ws_url

    def producer(self, inflight: int) -> Producer:
        return Producer(self, inflight)

    def token(self, user: str) -> str:
        now = int(time.time())
        return jwt.encode({"sub": user, "iat": now, "exp": now + 6 * 3600}, self.secret,
                          algorithm="HS256")


class NchanServer:
    """nginx + nchan in the place of a Tidings server (no tokens; a channel per user)."""

    greets = False

    def __init__(self, args: argparse.Namespace):
        self.args = args
        self.nchan = nchan.Nchan(free_port())
        self.url = self.nchan.url
        self.ws_url = self.url.replace("http", "ws", 1)

    async def start(self) -> None:
        if not nchan.available():
            raise SystemExit("nginx with the nchan module is not installed"
                             " (apt-get install nginx libnginx-mod-nchan)")
        await asyncio.to_thread(self.nchan.start)
        await asyncio.sleep(0.5)

    def ws_url_for(self, user: str) -> str:
        return f"{self.ws_url}/sub/{user}"

    def producer(self, inflight: int) -> NchanProducer:
        return NchanProducer(self, inflight)

    def token(self, user: str) -> str:
        return ""

    def node_pids(self) -> list[int]:
        return self.nchan.worker_pids()

    def sample(self) -> dict[str, float] | None:
        stats = [s for s in map(proc_stat, self.node_pids()) if s is not None]
        return {"rss_kib": sum(s[0] for s in stats),
                "cpu_s": sum(s[1] for s in stats)} if stats else None

    def stop(self) -> None:
        self.nchan.stop()


# -- subscribers ------------------------------------------------------------------------------

class Tally:
    """What all sockets received: latencies and per-tag arrival times."""

    def __init__(self) -> None:
        self.latencies: list[float] = []
        self.by_tag: dict[str, list[float]] = {}
        self.track_tags = False
        self.received = 0

    def reset(self) -> None:
        self.latencies = []
        self.by_tag = {}


class Sub:
    """One socket of one user; checks seq order and duplicates as messages arrive."""

    __slots__ = ("closed", "closes", "dups", "expected", "gaps", "last_seq", "ready", "received",
                 "resets", "tally", "task", "user", "ws")

    def __init__(self, user: str, tally: Tally):
        self.user = user
        self.tally = tally
        self.ws: aiohttp.ClientWebSocketResponse | None = None
        self.task: asyncio.Task[None] | None = None
        self.ready = asyncio.Event()
        self.last_seq = 0  # users are fresh: seqs start at 1
        self.expected = 0  # highest seq published to this user
        self.received = 0
        self.dups = 0
        self.gaps = 0
        self.resets = 0
        self.closes = 0
        self.closed: int | None = None

    async def connect(self, session: aiohttp.ClientSession, url: str, token: str,
                      since: int | None = None, greets: bool = True) -> None:
        """Open the socket; ``ready`` is set by the server's greeting, or at once if
        the server sends none."""
        self.ready = asyncio.Event()
        full = url if since is None else f"{url}?since={since}"
        headers = {"Authorization": f"Bearer {token}"} if token else {}
        self.ws = await session.ws_connect(full, headers=headers,
                                           autoping=True, heartbeat=None, max_msg_size=0,
                                           compress=0)
        self.task = asyncio.create_task(self._read(self.ws))
        if not greets:
            self.ready.set()

    async def _read(self, ws: aiohttp.ClientWebSocketResponse) -> None:
        tally = self.tally
        async for msg in ws:
            if msg.type not in (aiohttp.WSMsgType.TEXT, aiohttp.WSMsgType.BINARY):
                continue  # nchan sends its messages as binary frames
            now = time.time()
            m = orjson.loads(msg.data)
            kind = m.get("type")
            if kind == "notification":
                n = m["notification"]
                seq = n["seq"]
                if seq is not None:
                    if seq <= self.last_seq:
                        self.dups += 1
                        continue
                    if seq != self.last_seq + 1:
                        self.gaps += 1
                    self.last_seq = seq
                self.received += 1
                tally.received += 1
                data = n["data"]
                if data:
                    tally.latencies.append(now - data["t"])
                    if tally.track_tags:
                        tally.by_tag.setdefault(data["k"], []).append(now)
            elif kind == "counts":
                self.ready.set()
            elif kind == "reset":
                self.resets += 1
                self.last_seq = m.get("seq", self.last_seq)
        self.closed = ws.close_code
        self.closes += 1

    async def close(self) -> None:
        if self.ws is not None:
            await self.ws.close()
        if self.task is not None:
            with contextlib.suppress(Exception):
                await self.task


def check(subs: Iterable[Sub]) -> dict[str, Any]:
    """Correctness over the given sockets: nothing missed, nothing twice, order kept."""
    subs = list(subs)
    missed = sum(max(0, s.expected - s.last_seq) for s in subs)
    extra = sum(max(0, s.last_seq - s.expected) for s in subs)
    return {"expected": sum(s.expected for s in subs), "received": sum(s.received for s in subs),
            "missed": missed, "unexpected": extra, "duplicates": sum(s.dups for s in subs),
            "order_ok": all(s.gaps == 0 for s in subs), "gaps": sum(s.gaps for s in subs),
            "resets": sum(s.resets for s in subs)}


class Crowd:
    """Many subscribers over several loopback source addresses."""

    def __init__(self, server: Server, tally: Tally, sources: int, per_source: int,
                 first_source: int = 0):
        self.first_source = first_source
        self.server = server
        self.tally = tally
        self.sessions: list[aiohttp.ClientSession] = []
        self.subs: list[Sub] = []
        self.sources = sources
        self.per_source = per_source
        self.connect_errors = 0
        self.connect_times: list[float] = []

    def session_for(self, i: int) -> aiohttp.ClientSession:
        idx = min(i // self.per_source, self.sources - 1)
        while len(self.sessions) <= idx:
            n = self.first_source + len(self.sessions)
            host = "127.0.0.1" if n == 0 else f"127.0.0.{n + 1}"
            conn = aiohttp.TCPConnector(limit=0, local_addr=(host, 0), force_close=False)
            self.sessions.append(aiohttp.ClientSession(connector=conn))
        return self.sessions[idx]

    async def connect(self, users: list[str], concurrency: int) -> list[Sub]:
        sem = asyncio.Semaphore(concurrency)
        new = [Sub(u, self.tally) for u in users]
        base = len(self.subs)

        async def one(i: int, sub: Sub) -> None:
            async with sem:
                t0 = time.monotonic()
                for attempt in range(3):
                    try:
                        await sub.connect(self.session_for(base + i),
                                          self.server.ws_url_for(sub.user),
                                          self.server.token(sub.user),
                                          greets=self.server.greets)
                        await asyncio.wait_for(sub.ready.wait(), 30)
                        self.connect_times.append(time.monotonic() - t0)
                        return
                    except (aiohttp.ClientError, OSError, TimeoutError):
                        if attempt == 2:
                            self.connect_errors += 1
                        await asyncio.sleep(0.2)

        await asyncio.gather(*(one(i, s) for i, s in enumerate(new)))
        self.subs += new
        return new

    async def close(self) -> None:
        sem = asyncio.Semaphore(1000)

        async def one(sub: Sub) -> None:
            async with sem:
                with contextlib.suppress(Exception):
                    await sub.close()

        await asyncio.gather(*(one(s) for s in self.subs))
        self.subs = []
        for s in self.sessions:
            await s.close()
        self.sessions = []


# -- producers --------------------------------------------------------------------------------

class Producer:
    def __init__(self, server: Server, inflight: int):
        self.server = server
        self.session = aiohttp.ClientSession(
            connector=aiohttp.TCPConnector(limit=inflight),
            headers={"Authorization": f"Bearer {server.key}"})
        self.errors = 0
        self.error_kinds: dict[str, int] = {}
        self.sent = 0

    async def publish(self, subs: list[Sub], tag: str, sent_at: float | None = None) -> bool:
        body = {"recipients": [s.user for s in subs], "message": f"bench {tag}",
                "type": "bench", "data": {"t": sent_at or time.time(), "k": tag}}
        try:
            async with self.session.post(self.server.url + PUBLISH_PATH,
                                         data=orjson.dumps(body),
                                         headers={"Content-Type": "application/json"}) as r:
                raw = await r.read()
                if r.status != 201:
                    self._error(f"http {r.status}")
                    return False
        except (aiohttp.ClientError, OSError, TimeoutError) as exc:
            self._error(type(exc).__name__)
            return False
        self.sent += 1
        by_user = {s.user: s for s in subs}
        for row in orjson.loads(raw)["notifications"]:
            sub = by_user[row["recipient"]]
            sub.expected = max(sub.expected, row["seq"])
        return True

    def _error(self, kind: str) -> None:
        self.errors += 1
        self.error_kinds[kind] = self.error_kinds.get(kind, 0) + 1

    async def close(self) -> None:
        await self.session.close()


class NchanProducer(Producer):
    """The same publishes, to nchan's per-user channels (seqs numbered here)."""

    def __init__(self, server: NchanServer, inflight: int):
        self.server = server  # type: ignore[assignment]
        self.publisher = nchan.NchanPublisher(server.url, inflight)
        self.errors = 0
        self.error_kinds = {}
        self.sent = 0

    async def publish(self, subs: list[Sub], tag: str, sent_at: float | None = None) -> bool:
        by_user = {s.user: s for s in subs}
        try:
            rows = await self.publisher.publish(
                list(by_user), f"bench {tag}", {"t": sent_at or time.time(), "k": tag})
        except (aiohttp.ClientError, OSError, TimeoutError) as exc:
            self._error(type(exc).__name__)
            return False
        self.sent += 1
        for user, seq in rows:
            by_user[user].expected = max(by_user[user].expected, seq)
        return True

    async def close(self) -> None:
        await self.publisher.close()


async def offered_load(rate: float, duration: float,
                       fire: Callable[[int, float], Awaitable[Any]], inflight: int) -> float:
    """Fire ``rate`` calls per second for ``duration`` s on schedule (open loop).

    Each call gets its index and its scheduled wall time, so latency counts any
    time a request waited for the driver too. Returns how late the last one started.
    """
    sem = asyncio.Semaphore(inflight)
    total = int(rate * duration)
    wall0, mono0 = time.time(), time.monotonic()
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
            t = asyncio.create_task(call(i, wall0 + i / rate))
            tasks.add(t)
            t.add_done_callback(tasks.discard)
            i += 1
        await asyncio.sleep(0.002)
    if tasks:
        await asyncio.gather(*tasks)
    return lag


async def drain(subs: list[Sub], limit: float) -> float:
    """Wait until every socket has its expected seq (or ``limit`` s); returns the wait."""
    t0 = time.monotonic()
    while time.monotonic() - t0 < limit:
        if all(s.last_seq >= s.expected for s in subs):
            break
        await asyncio.sleep(0.02)
    return time.monotonic() - t0


def users(prefix: str, n: int) -> list[str]:
    return [f"{prefix}-{i}" for i in range(n)]


# -- scenarios ---------------------------------------------------------------------------------

class Bench:
    def __init__(self, args: argparse.Namespace, server: Server):
        self.args = args
        self.server = server
        self.run_id = secrets.token_hex(3)
        self.tally = Tally()

    def crowd(self) -> Crowd:
        return Crowd(self.server, self.tally, self.args.sources, self.args.per_source)

    def prefix(self, name: str) -> str:
        return f"bench-{self.run_id}-{name}"

    async def idle(self) -> dict[str, Any]:
        a = self.args
        crowd = self.crowd()
        # warm up the server's pools and code paths, then take the baseline
        await crowd.connect(users(self.prefix("idle-warm"), 50), 50)
        await crowd.close()
        await asyncio.sleep(2)
        before = self.server.sample()
        if a.driver_procs > 1:
            return await self._idle_split(before)
        crowd = self.crowd()
        t0 = time.monotonic()
        subs = await crowd.connect(users(self.prefix("idle"), a.sockets), a.connect_concurrency)
        wall = time.monotonic() - t0
        after_connect = self.server.sample()
        await asyncio.sleep(a.hold)
        after = self.server.sample()
        open_now = sum(1 for s in subs if s.ws is not None and not s.ws.closed)
        result: dict[str, Any] = {
            "sockets": a.sockets, "connected": len(crowd.connect_times),
            "connect_errors": crowd.connect_errors, "open_after_hold": open_now,
            "held_s": a.hold, "connect_wall_s": round(wall, 2),
            "connects_per_s": round(len(crowd.connect_times) / wall, 1),
            "connect_p50_ms": ms(pct(crowd.connect_times, 50)),
            "connect_p99_ms": ms(pct(crowd.connect_times, 99)),
            "sources": len(crowd.sessions),
        }
        self._idle_memory(result, before, after_connect, after, open_now)
        await crowd.close()
        return result

    def _idle_memory(self, result: dict[str, Any], before: dict[str, float] | None,
                     after_connect: dict[str, float] | None, after: dict[str, float] | None,
                     open_now: int) -> None:
        a = self.args
        if before and after and after_connect:
            delta = after["rss_kib"] - before["rss_kib"]
            result.update({
                "rss_before_mib": round(before["rss_kib"] / 1024, 1),
                "rss_after_mib": round(after["rss_kib"] / 1024, 1),
                "kib_per_socket": round(delta / max(1, open_now), 2),
                "server_cpu_ms_per_connect": round(
                    (after_connect["cpu_s"] - before["cpu_s"]) * 1000 / max(1, a.sockets), 3),
            })
        result["correct"] = {"missed": 0, "duplicates": 0, "order_ok": True,
                             "all_open": open_now == a.sockets}

    async def _idle_split(self, before: dict[str, float] | None) -> dict[str, Any]:
        """The idle scenario over ``--driver-procs`` helper processes (each process can
        hold only as many sockets as its open-files limit allows)."""
        a = self.args
        share = -(-a.sockets // a.driver_procs)
        sources_each = max(1, -(-share // a.per_source))
        helpers = []
        t0 = time.monotonic()
        for i in range(a.driver_procs):
            count = min(share, a.sockets - i * share)
            cmd = [sys.executable, str(Path(__file__)), "idle", "--url", self.server.url,
                   f"--jwt-secret={self.server.secret}", f"--api-key={self.server.key}",
                   "--part", f"{self.prefix('idle')}-p{i},{count},{1 + i * sources_each}",
                   "--per-source", str(a.per_source),
                   "--connect-concurrency", str(max(1, a.connect_concurrency // a.driver_procs))]
            helpers.append(await asyncio.create_subprocess_exec(
                *cmd, stdin=asyncio.subprocess.PIPE, stdout=asyncio.subprocess.PIPE))
        connected = [json.loads(await h.stdout.readline()) for h in helpers]
        wall = time.monotonic() - t0
        after_connect = self.server.sample()
        await asyncio.sleep(a.hold)
        after = self.server.sample()
        for h in helpers:
            h.stdin.write(b"close\n")
            await h.stdin.drain()
        held = [json.loads(await h.stdout.readline()) for h in helpers]
        for h in helpers:
            await h.wait()
        open_now = sum(h["open"] for h in held)
        done = sum(c["connected"] for c in connected)
        result: dict[str, Any] = {
            "sockets": a.sockets, "connected": done,
            "connect_errors": sum(c["errors"] for c in connected), "open_after_hold": open_now,
            "held_s": a.hold, "connect_wall_s": round(wall, 2),
            "connects_per_s": round(done / wall, 1), "driver_procs": a.driver_procs,
            "sources": sum(c["sources"] for c in connected),
        }
        self._idle_memory(result, before, after_connect, after, open_now)
        return result

    async def hold_part(self) -> None:
        """Helper of a split idle run: connect, say so, hold until told, say how many stayed."""
        prefix, count, first = self.args.part.split(",")
        crowd = Crowd(self.server, self.tally, 64, self.args.per_source, int(first))
        subs = await crowd.connect(users(prefix, int(count)), self.args.connect_concurrency)
        print(json.dumps({"connected": len(crowd.connect_times), "errors": crowd.connect_errors,
                          "sources": len(crowd.sessions)}), flush=True)
        await asyncio.get_running_loop().run_in_executor(None, sys.stdin.readline)
        print(json.dumps({"open": sum(1 for s in subs if s.ws is not None and not s.ws.closed)}),
              flush=True)
        await crowd.close()

    async def fanout(self) -> dict[str, Any]:
        a = self.args
        crowd = self.crowd()
        subs = await crowd.connect(users(self.prefix("fan"), a.recipients), a.connect_concurrency)
        producer = self.server.producer(4)
        self.tally.track_tags = True
        reps = []
        try:
            for rep in range(a.repeat):
                self.tally.reset()
                tag = f"fan{rep}"
                before = self.server.sample()
                t0 = time.time()
                ok = await producer.publish(subs, tag, t0)
                t_post = time.time() - t0
                await drain(subs, 30)
                after = self.server.sample()
                arrivals = self.tally.by_tag.get(tag, [])
                reps.append({
                    "ok": ok, "post_ms": ms(t_post), "delivered": len(arrivals),
                    "first_ms": ms(min(arrivals) - t0) if arrivals else None,
                    "last_ms": ms(max(arrivals) - t0) if arrivals else None,
                    "p50_ms": ms(pct([x - t0 for x in arrivals], 50)),
                    "server_cpu_ms": round((after["cpu_s"] - before["cpu_s"]) * 1000, 1)
                    if before and after else None,
                })
                await asyncio.sleep(0.5)
        finally:
            self.tally.track_tags = False
            await producer.close()
        correct = check(subs)
        await crowd.close()
        lasts = [r["last_ms"] for r in reps if r["last_ms"] is not None]
        return {"recipients": a.recipients, "connected": len(crowd.connect_times),
                "repeats": reps, "last_median_ms": statistics.median(lasts) if lasts else None,
                "post_median_ms": statistics.median(r["post_ms"] for r in reps),
                "errors": producer.errors, "correct": correct}

    async def _rate_step(self, subs: list[Sub], producer: Producer, rate: float,
                         batch: int, seconds: float, tag: str) -> dict[str, Any]:
        """Offer ``rate`` publishes/s of ``batch`` recipients each for ``seconds``."""
        self.tally.reset()
        n = len(subs)
        errors0 = producer.errors
        before = self.server.sample()
        received0 = self.tally.received
        t0 = time.monotonic()

        async def fire(i: int, at: float) -> None:
            start = (i * batch) % n
            group = subs[start:start + batch]
            if len(group) < batch:
                group += subs[:batch - len(group)]
            await producer.publish(group, f"{tag}", at)

        lag = await offered_load(rate, seconds, fire, self.args.inflight)
        sent_wall = time.monotonic() - t0
        waited = await drain(subs, self.args.drain_timeout)
        wall = time.monotonic() - t0
        after = self.server.sample()
        delivered = self.tally.received - received0
        result = {
            "offered_publishes_per_s": rate, "batch": batch,
            "offered_deliveries_per_s": rate * batch, "seconds": seconds,
            "sent_wall_s": round(sent_wall, 2), "drain_s": round(waited, 2),
            "delivered": delivered,
            "deliveries_per_s": round(delivered / wall, 1),
            "driver_lag_ms": ms(lag), "errors": producer.errors - errors0,
            **lat_summary(self.tally.latencies),
        }
        if before and after:
            cpu = after["cpu_s"] - before["cpu_s"]
            result["server_cpu_s"] = round(cpu, 2)
            result["server_cpu_util"] = round(cpu / wall, 2)
            result["deliveries_per_cpu_s"] = round(delivered / cpu, 1) if cpu else None
            result["server_cpu_ms_per_delivery"] = round(cpu * 1000 / max(1, delivered), 4)
            result["rss_mib"] = round(after["rss_kib"] / 1024, 1)
        return result

    async def latency(self) -> dict[str, Any]:
        a = self.args
        crowd = self.crowd()
        subs = await crowd.connect(users(self.prefix("lat"), a.subscribers),
                                   a.connect_concurrency)
        producer = self.server.producer(a.inflight)
        try:
            # a short warm-up at the same rate, not counted
            await self._rate_step(subs, producer, a.rate, 1, min(2.0, a.seconds), "warm")
            step = await self._rate_step(subs, producer, a.rate, 1, a.seconds, "lat")
        finally:
            await producer.close()
        correct = check(subs)
        await crowd.close()
        return {"subscribers": a.subscribers, "rate": a.rate, **step, "correct": correct}

    async def throughput(self) -> dict[str, Any]:
        a = self.args
        crowd = self.crowd()
        subs = await crowd.connect(users(self.prefix("tp"), a.subscribers),
                                   a.connect_concurrency)
        producer = self.server.producer(a.inflight)
        steps = []
        best = None
        try:
            for dps in a.steps:
                rate = dps / a.batch
                step = await self._rate_step(subs, producer, rate, a.batch, a.seconds, "tp")
                c = check(subs)
                step["missed_so_far"] = c["missed"]
                steps.append(step)
                print(f"  throughput step {dps}/s: {step['deliveries_per_s']}/s p50 "
                      f"{step['p50_ms']} p99 {step['p99_ms']} errors {step['errors']} "
                      f"cpu {step.get('server_cpu_util')}", file=sys.stderr)
                held = (step["errors"] == 0 and c["missed"] == 0
                        and (step["p99_ms"] or 0) <= a.max_p99_ms
                        and step["driver_lag_ms"] <= a.max_p99_ms)
                if not held:
                    break
                best = step
                await asyncio.sleep(1)
        finally:
            await producer.close()
        correct = check(subs)
        await crowd.close()
        return {"subscribers": a.subscribers, "batch": a.batch, "max_p99_ms": a.max_p99_ms,
                "steps": steps, "sustained": best, "errors": producer.errors,
                "error_kinds": producer.error_kinds, "correct": correct}

    async def recovery(self) -> dict[str, Any]:
        a = self.args
        crowd = self.crowd()
        subs = await crowd.connect(users(self.prefix("rec"), a.repeat), 8)
        producer = self.server.producer(32)
        reps = []
        try:
            for sub in subs:
                await sub.close()
                sem = asyncio.Semaphore(32)

                async def one(i: int, sub: Sub = sub, sem: asyncio.Semaphore = sem) -> None:
                    async with sem:
                        await producer.publish([sub], f"rec{i}")
                await asyncio.gather(*(one(i) for i in range(a.missed)))
                since = sub.last_seq
                self.tally.reset()
                t0 = time.monotonic()
                await sub.connect(crowd.session_for(0), self.server.ws_url,
                                  self.server.token(sub.user), since=since)
                while sub.last_seq < sub.expected and time.monotonic() - t0 < 30:  # noqa: ASYNC110
                    await asyncio.sleep(0.001)
                elapsed = time.monotonic() - t0
                reps.append({"missed": sub.expected - since, "replayed": sub.last_seq - since,
                             "ms": ms(elapsed)})
        finally:
            await producer.close()
        correct = check(subs)
        await crowd.close()
        times = [r["ms"] for r in reps]
        return {"missed_per_reconnect": a.missed, "repeats": reps,
                "median_ms": statistics.median(times) if times else None,
                "errors": producer.errors, "correct": correct}


# -- output ---------------------------------------------------------------------------------

def markdown(report: dict[str, Any]) -> str:
    rows = ["| scenario | result | correctness |", "|---|---|---|"]
    for name, r in report["scenarios"].items():
        c = r.get("correct", {})
        corr = (f"missed {c.get('missed')}, duplicates {c.get('duplicates')}, "
                f"order {'ok' if c.get('order_ok') else 'BROKEN'}")
        if name == "idle":
            res = (f"{r['connected']}/{r['sockets']} sockets, {r['connects_per_s']} connects/s, "
                   f"{r.get('kib_per_socket')} KiB/socket (RSS {r.get('rss_before_mib')} → "
                   f"{r.get('rss_after_mib')} MiB), {r['open_after_hold']} open after "
                   f"{r['held_s']} s")
        elif name == "fanout":
            res = (f"{r['recipients']} recipients: last delivered median {r['last_median_ms']} ms"
                   f" (POST {r['post_median_ms']} ms), over {len(r['repeats'])} publishes")
        elif name == "latency":
            res = (f"{r['rate']}/s to {r['subscribers']} sockets: p50 {r['p50_ms']} p95 "
                   f"{r['p95_ms']} p99 {r['p99_ms']} max {r['max_ms']} ms, "
                   f"{r.get('server_cpu_ms_per_delivery')} server CPU ms/delivery")
        elif name == "throughput":
            s = r.get("sustained") or {}
            res = (f"batch {r['batch']}: sustained {s.get('deliveries_per_s')} deliveries/s "
                   f"({s.get('offered_publishes_per_s')} publishes/s) p50 {s.get('p50_ms')} "
                   f"p99 {s.get('p99_ms')} ms, {s.get('deliveries_per_cpu_s')} deliveries per "
                   f"server CPU-s; steps {[x['offered_deliveries_per_s'] for x in r['steps']]}")
        elif name == "recovery":
            res = (f"{r['missed_per_reconnect']} missed: last replayed after median "
                   f"{r['median_ms']} ms over {len(r['repeats'])} reconnects")
        else:
            res = ""
        rows.append(f"| {name} | {res} | {corr} |")
    return "\n".join(rows) + "\n"


def correct_ok(report: dict[str, Any]) -> bool:
    for r in report["scenarios"].values():
        c = r.get("correct", {})
        if c.get("missed") or c.get("duplicates") or not c.get("order_ok", True):
            return False
    return True


async def main_async(args: argparse.Namespace) -> int:
    nofile = raise_nofile()
    server: Server | NchanServer = NchanServer(args) if args.target == "nchan" else Server(args)
    if args.part:  # a helper of a split idle run, driven through stdin/stdout
        server.ws_url = server.url.replace("http", "ws", 1) + WS_PATH
        await Bench(args, server).hold_part()
        return 0
    report: dict[str, Any] = {
        "label": args.label, "started": time.strftime("%Y-%m-%dT%H:%M:%S"),
        "command": " ".join(["python", "loadtest/bench.py", *sys.argv[1:]]),
        "machine": {"cpus": os.cpu_count(), "python": platform.python_version(),
                    "nofile": nofile},
        "target": args.target,
        "server": {"workers": args.workers, "database": "embedded" if not args.database_url
                   else "given", "redis": "embedded" if not args.redis_url else "given",
                   "external": bool(args.url)},
        "scenarios": {},
    }
    try:
        await server.start()
        report["server"]["url"] = server.url
        bench = Bench(args, server)
        for name in args.scenarios:
            print(f"running {name}...", file=sys.stderr)
            report["scenarios"][name] = await getattr(bench, name)()
            print(json.dumps(report["scenarios"][name], default=str)[:600], file=sys.stderr)
    finally:
        server.stop()
    save(args, report)
    print(markdown(report))
    return 0 if correct_ok(report) else 1


def save(args: argparse.Namespace, report: dict[str, Any]) -> None:
    out = Path(args.out) if args.out else HERE / "results" / (args.label or "bench")
    out.parent.mkdir(parents=True, exist_ok=True)
    Path(f"{out}.json").write_text(json.dumps(report, indent=2, default=str) + "\n")
    Path(f"{out}.md").write_text(f"# {args.label or 'bench'}\n\n`{report['command']}`\n\n"
                                 + markdown(report))


def parse(argv: list[str] | None = None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0],
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("scenarios", nargs="+",
                   choices=["idle", "fanout", "throughput", "latency", "recovery"])
    g = p.add_argument_group("server")
    g.add_argument("--target", choices=["tidings", "nchan"], default="tidings",
                   help="nchan: nginx + nchan started here (idle, fanout, latency only)")
    g.add_argument("--url", help="a running Tidings (loopback); default: start one here")
    g.add_argument("--jwt-secret", help="HS256 secret of the running server")
    g.add_argument("--api-key", help="producer key of the running server")
    g.add_argument("--server-pid", type=int, action="append",
                   help="pid(s) of the running server's node processes, for RSS and CPU")
    g.add_argument("--database-url", help="PostgreSQL for the started server (default embedded)")
    g.add_argument("--redis-url", help="Redis for the started server (default embedded)")
    g.add_argument("--workers", type=int, default=1, help="node processes of the started server")
    g.add_argument("--send-queue", type=int, default=256, help="TIDINGS_WS_SEND_QUEUE")
    g.add_argument("--keep", action="store_true", help="keep the started server's data folder")
    s = p.add_argument_group("sizes")
    s.add_argument("--sockets", type=int, default=5000, help="idle: sockets to hold")
    s.add_argument("--hold", type=float, default=5.0, help="idle: seconds to hold them")
    s.add_argument("--recipients", type=int, default=10_000, help="fanout: recipients")
    s.add_argument("--repeat", type=int, default=5, help="fanout/recovery: repetitions")
    s.add_argument("--subscribers", type=int, default=1000,
                   help="latency/throughput: connected users")
    s.add_argument("--rate", type=float, default=1000, help="latency: publishes per second")
    s.add_argument("--seconds", type=float, default=10, help="latency/throughput: step length")
    s.add_argument("--batch", type=int, default=50, help="throughput: recipients per publish")
    s.add_argument("--steps", type=lambda v: [int(x) for x in v.split(",")],
                   default=[2000, 5000, 10000, 15000, 20000, 25000, 30000, 40000],
                   help="throughput: offered deliveries per second, comma-separated")
    s.add_argument("--max-p99-ms", type=float, default=500, help="throughput: p99 that breaks")
    s.add_argument("--missed", type=int, default=1000, help="recovery: notifications missed")
    s.add_argument("--inflight", type=int, default=64, help="publish requests in flight")
    s.add_argument("--drain-timeout", type=float, default=20.0)
    s.add_argument("--connect-concurrency", type=int, default=200)
    s.add_argument("--sources", type=int, default=8, help="loopback source addresses")
    s.add_argument("--per-source", type=int, default=20_000, help="sockets per source address")
    s.add_argument("--driver-procs", type=int, default=1,
                   help="idle: driver processes holding the sockets (past one's open-files limit)")
    s.add_argument("--part", help=argparse.SUPPRESS)  # PREFIX,COUNT,FIRST_SOURCE (helpers)
    p.add_argument("--label", default=None, help="results file name (no extension)")
    p.add_argument("--out", default=None, help="results path without extension")
    p.add_argument("--uvloop", action="store_true", help="run the driver on uvloop")
    args = p.parse_args(argv)
    if args.target == "nchan" and (set(args.scenarios) - {"idle", "fanout", "latency"}
                                   or args.url or args.driver_procs > 1):
        p.error("--target nchan runs idle, fanout and latency, on its own server and driver")
    if not args.label:
        args.label = "-".join(args.scenarios) + time.strftime("-%Y%m%d-%H%M%S")
    return args


def main(argv: list[str] | None = None) -> int:
    args = parse(argv)
    if args.uvloop:
        with contextlib.suppress(ImportError):
            import uvloop

            return uvloop.run(main_async(args))
    return asyncio.run(main_async(args))


if __name__ == "__main__":
    raise SystemExit(main())
