"""The servers under test: a Tidings node (started here or already running) and nginx + nchan.

Each target gives the driver an :class:`Endpoint` (how a socket of a user connects:
URL, token, whether the server greets a new socket), a producer, and samples of its
node processes (RSS, CPU). A Tidings node started here gets a data folder of its own
(fresh embedded PostgreSQL and Redis, or the ``--database-url``/``--redis-url`` given)
and is stopped by pid; :meth:`TidingsServer.support_sample` adds up the CPU of its
PostgreSQL and Redis (the embedded ones, or whatever listens on the given loopback
ports) for the figures "with PostgreSQL and Redis".
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import ipaddress
import os
import secrets
import shutil
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import parse_qs, urlsplit

import aiohttp
import jwt

from . import nchan, procs
from .producers import NchanProducer, Producer

WS_PATH = "/ws/me/notifications"


def free_port() -> int:
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def loopback_only(url: str) -> None:
    """Refuse (SystemExit) a URL that leaves this machine: its host must be a loopback
    address or ``localhost``, or, with no host, a ``?host=`` Unix socket folder."""
    parts = urlsplit(url)
    host = parts.hostname or ""
    if not host:
        socket_dir = parse_qs(parts.query).get("host", [""])[0]
        if socket_dir.startswith("/"):
            return
    try:
        ok = ipaddress.ip_address(host).is_loopback
    except ValueError:
        ok = host == "localhost"
    if not ok:
        raise SystemExit(f"refusing a non-loopback target: {url}")


@dataclass(frozen=True)
class Endpoint:
    """How a user's socket reaches a target; plain data, so a holder process can get it."""

    kind: str  # "tidings" or "nchan"
    ws_url: str  # Tidings: the socket URL; nchan: the server's ws:// base
    secret: str = ""

    @property
    def greets(self) -> bool:
        """Tidings greets each socket (counts) once it is live; nchan sends nothing."""
        return self.kind == "tidings"

    def url_for(self, user: str) -> str:
        return self.ws_url if self.kind == "tidings" else f"{self.ws_url}/sub/{user}"

    def token(self, user: str) -> str:
        if self.kind != "tidings":
            return ""
        now = int(time.time())
        return jwt.encode({"sub": user, "iat": now, "exp": now + 6 * 3600}, self.secret,
                          algorithm="HS256")


class TidingsServer:
    """A Tidings server: started here (and stopped by pid), or one already running."""

    kind = "tidings"

    def __init__(self, args: argparse.Namespace):
        self.args = args
        self.proc: subprocess.Popen[bytes] | None = None
        self.tmp: str | None = None
        #: what :meth:`support_sample` cannot see (then it answers None)
        self.support_missing: list[str] = []
        #: the PostgreSQL and Redis serving the given URLs (the embedded ones are found anew)
        self.support_roots: list[int] = []
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

    @property
    def endpoint(self) -> Endpoint:
        return Endpoint("tidings", self.url.replace("http", "ws", 1) + WS_PATH, self.secret)

    async def start(self) -> None:
        self.spawn()
        await self.ready()
        self.find_support()

    def find_support(self) -> None:
        """Find the processes serving the given URLs once (they stay for the run); what
        cannot be seen (a running server's, or a URL nobody visibly listens on) is
        noted in :attr:`support_missing`."""
        if self.args.url:
            self.support_missing = ["postgresql", "redis"]
            return
        for name, url in (("postgresql", self.args.database_url),
                          ("redis", self.args.redis_url)):
            if url:
                roots = procs.listeners(url)
                self.support_roots += roots
                if not roots:
                    self.support_missing.append(name)

    def spawn(self) -> None:
        a = self.args
        if a.url:
            return
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
        log = open(Path(self.tmp) / "server.log", "wb")
        self.proc = subprocess.Popen([sys.executable, "-m", "tidings", "serve"], env=env,
                                     stdout=log, stderr=subprocess.STDOUT)
        self.url = f"http://127.0.0.1:{port}"

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
        return [p for p in procs.children(self.proc.pid) if "_node" in procs.cmdline(p)]

    def support_pids(self) -> list[int]:
        """PostgreSQL and Redis processes serving this node, when they can be found: the
        embedded ones (below the node, or naming its data folder), else the processes
        listening on the given URLs' loopback ports."""
        found: set[int] = set()
        if self.proc is not None:
            found.update(procs.descendants(self.proc.pid))
        embedded = not (self.args.database_url and self.args.redis_url)
        for root in [*self.support_roots,
                     *(procs.holding(self.tmp) if self.tmp and embedded else [])]:
            found.update(procs.descendants(root))
        found -= set(self.node_pids())
        if self.proc is not None:
            found.discard(self.proc.pid)
        return sorted(found)

    def sample(self) -> dict[str, float] | None:
        """Summed RSS (KiB) and CPU seconds of the node processes, None if unknown."""
        return procs.sample(self.node_pids())

    def support_sample(self) -> dict[str, float] | None:
        """PostgreSQL's and Redis's RSS and CPU; None unless both can be seen."""
        if self.support_missing:
            return None
        return procs.sample(self.support_pids())

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

    def producer(self, inflight: int) -> Producer:
        return Producer(self.url, self.key, inflight, self.args.endpoint,
                        self.args.per_request)


class NchanServer:
    """nginx + nchan in the place of a Tidings server (no tokens; a channel per user)."""

    kind = "nchan"

    def __init__(self, args: argparse.Namespace):
        self.args = args
        self.nchan = nchan.Nchan(free_port())
        self.url = self.nchan.url
        self.support_missing: list[str] = []

    @property
    def endpoint(self) -> Endpoint:
        return Endpoint("nchan", self.url.replace("http", "ws", 1))

    async def start(self) -> None:
        if not nchan.available():
            raise SystemExit("nginx with the nchan module is not installed"
                             " (apt-get install nginx libnginx-mod-nchan)")
        await asyncio.to_thread(self.nchan.start)
        await asyncio.sleep(0.5)

    def producer(self, inflight: int) -> NchanProducer:
        return NchanProducer(self.url, inflight)

    def node_pids(self) -> list[int]:
        return self.nchan.worker_pids()

    def sample(self) -> dict[str, float] | None:
        return procs.sample(self.node_pids())

    def support_sample(self) -> dict[str, float] | None:
        """nchan keeps its channels in its own memory: no database, nothing to add."""
        return {"rss_kib": 0.0, "cpu_s": 0.0}

    def stop(self) -> None:
        self.nchan.stop()


Target = TidingsServer | NchanServer
