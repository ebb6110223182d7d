"""nginx with the nchan pub/sub module, beside Tidings in the same benchmark sitting.

What may live here: starting and stopping one nginx + nchan (Debian's ``nginx`` and
``libnginx-mod-nchan``), and its publisher. It is a lower bound, not an equal: no
auth, no database, in-memory channels. One worker process, loopback only, its own
temporary prefix and config, its worker allowed as many open files as this
process may have (sockets past 1,024 need it); :meth:`Nchan.stop` ends it (by its
pid) and removes the prefix. Each user has a channel: subscribers open ``/sub/<user>`` over
WebSocket, the publisher POSTs to ``/pub/<user>[,<user>...]`` (up to
:data:`CHANNELS_PER_PUBLISH` channels per request). Messages are what a Tidings
socket would get (``{"type": "notification", "notification": {...}}``) with seqs
numbered per user by the publisher, so the bench driver checks order and loss
the same way for both.
"""

from __future__ import annotations

import asyncio
import contextlib
import resource
import shutil
import socket
import subprocess
import tempfile
import time
from pathlib import Path
from typing import Any

import aiohttp
import orjson

#: Where Debian puts the binary and the module.
NGINX = "/usr/sbin/nginx"
MODULE = "/usr/lib/nginx/modules/ngx_nchan_module.so"
#: nchan publishes one message to at most this many channels at once.
CHANNELS_PER_PUBLISH = 255

CONFIG = """
daemon off;
master_process on;
worker_processes 1;
worker_rlimit_nofile {nofile};
pid {prefix}/nginx.pid;
error_log {prefix}/error.log warn;
load_module {module};
events {{ worker_connections 100000; }}
http {{
    access_log off;
    client_body_temp_path {prefix}/body;
    proxy_temp_path {prefix}/proxy;
    fastcgi_temp_path {prefix}/fastcgi;
    uwsgi_temp_path {prefix}/uwsgi;
    scgi_temp_path {prefix}/scgi;
    large_client_header_buffers 4 64k;
    nchan_shared_memory_size 256m;
    server {{
        listen 127.0.0.1:{port};
        location ~ ^/sub/([^/]+)$ {{
            nchan_subscriber websocket;
            nchan_channel_id $1;
        }}
        location ~ ^/pub/([^/]+)$ {{
            nchan_publisher http;
            nchan_channel_id $1;
            nchan_channel_id_split_delimiter ",";
            nchan_max_channel_id_length 65536;
            nchan_message_buffer_length 1;
            nchan_message_timeout 60s;
        }}
    }}
}}
"""


def available() -> bool:
    """Whether nginx and the nchan module are installed."""
    return Path(NGINX).exists() and Path(MODULE).exists()


class Nchan:
    """One nginx + nchan on 127.0.0.1:``port``, started by :meth:`start`."""

    def __init__(self, port: int):
        self.port = port
        self.url = f"http://127.0.0.1:{port}"
        self.prefix = Path(tempfile.mkdtemp(prefix="tidings-nchan-"))
        self.proc: subprocess.Popen[bytes] | None = None

    def start(self, wait: float = 10.0) -> None:
        """Start nginx in the foreground of a child process; returns once it listens."""
        conf = self.prefix / "nginx.conf"
        nofile = resource.getrlimit(resource.RLIMIT_NOFILE)[1]
        if nofile == resource.RLIM_INFINITY:
            nofile = 1_048_576
        conf.write_text(CONFIG.format(prefix=self.prefix, module=MODULE, port=self.port,
                                      nofile=nofile))
        log = open(self.prefix / "stderr.log", "wb")
        self.proc = subprocess.Popen([NGINX, "-p", str(self.prefix), "-c", str(conf)],
                                     stdout=log, stderr=subprocess.STDOUT)
        deadline = time.monotonic() + wait
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError(f"nginx exited: {self.log_tail()}")
            with contextlib.suppress(OSError), socket.create_connection(
                    ("127.0.0.1", self.port), timeout=0.2):
                return
            time.sleep(0.05)
        raise RuntimeError(f"nginx did not listen: {self.log_tail()}")

    def worker_pids(self) -> list[int]:
        """The worker process (the one that serves sockets), for RSS and CPU."""
        if self.proc is None:
            return []
        found = []
        for task in Path(f"/proc/{self.proc.pid}/task").glob("*/children"):
            found += [int(p) for p in task.read_text().split()]
        return found

    def log_tail(self) -> str:
        text = ""
        for name in ("stderr.log", "error.log"):
            with contextlib.suppress(FileNotFoundError):
                text += (self.prefix / name).read_text(errors="replace")[-1500:]
        return text

    def stop(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(10)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        shutil.rmtree(self.prefix, ignore_errors=True)


class NchanPublisher:
    """Publishes notifications to users' channels; numbers each user's seqs.

    A user's publishes reach nginx in seq order: a publish waits for the earlier ones
    that name any of its users (nchan stores a channel's messages in arrival order).
    The requests of one publish (up to :data:`CHANNELS_PER_PUBLISH` channels each) go
    out together."""

    def __init__(self, url: str, inflight: int):
        self.url = url
        self.session = aiohttp.ClientSession(connector=aiohttp.TCPConnector(limit=inflight))
        self.seqs: dict[str, int] = {}
        self.last: dict[str, asyncio.Future[None]] = {}

    async def publish(self, users: list[str], message: str, data: dict[str, Any]) -> list[
            tuple[str, int]]:
        """One notification to ``users``: (user, seq) of each, once every channel took it.
        Users whose next seq is the same share requests. Raises on a refused publish."""
        done: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        before = {id(f): f for u in users if (f := self.last.get(u)) is not None and not f.done()}
        by_seq: dict[int, list[str]] = {}
        for user in users:
            seq = self.seqs.get(user, 0) + 1
            self.seqs[user] = seq
            self.last[user] = done
            by_seq.setdefault(seq, []).append(user)
        try:
            if before:
                await asyncio.wait(before.values())
            await asyncio.gather(*(
                self._post(group[i:i + CHANNELS_PER_PUBLISH], seq, message, data)
                for seq, group in by_seq.items()
                for i in range(0, len(group), CHANNELS_PER_PUBLISH)))
        finally:
            done.set_result(None)
            for user in users:
                if self.last.get(user) is done:
                    del self.last[user]
        return [(u, self.seqs[u]) for u in users]

    async def _post(self, users: list[str], seq: int, message: str,
                    data: dict[str, Any]) -> None:
        frame = orjson.dumps({"type": "notification", "notification": {
            "seq": seq, "uid": None, "notification": {"message": message}, "data": data}})
        async with self.session.post(f"{self.url}/pub/{','.join(users)}", data=frame) as r:
            await r.read()
            if r.status not in (201, 202):
                raise aiohttp.ClientResponseError(
                    r.request_info, (), status=r.status, message="nchan refused")

    async def close(self) -> None:
        await self.session.close()
