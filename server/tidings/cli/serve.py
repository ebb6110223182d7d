"""``tidings serve`` (and its internal ``_node`` processes) and ``tidings migrate``.

Order of ``serve``: settings, the port (under a second), the embedded servers
and the data-folder lock, PostgreSQL (migrations) and Redis, then the address
file and the banner. Any failure before serving is one line and status 2.
"""

from __future__ import annotations

import argparse
import os
import signal
import socket
import subprocess
import sys
import time
from dataclasses import replace
from typing import Any
from urllib.parse import urlsplit

from .. import __version__, config, datadir
from ..config import Settings
from ..embedded import die_with_parent
from . import common, reach, tuning
from .folder import embedded_servers


def local_url(s: Settings) -> str:
    """The URL this machine reaches the server at (a wildcard address becomes loopback)."""
    host = {"0.0.0.0": "127.0.0.1", "::": "::1", "": "127.0.0.1"}.get(s.host, s.host)
    if ":" in host:
        host = f"[{host.strip('[]')}]"
    return f"http://{host}:{s.port}"


def _lan_address() -> str | None:
    """This machine's address on its network (no packet is sent), if it has one."""
    try:
        with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
            s.connect(("192.0.2.1", 9))
            found = s.getsockname()[0]
    except OSError:
        return None
    return None if found.startswith("127.") else found


def banner(s: Settings, embedded: bool) -> str:
    url = s.public_url.rstrip("/") if s.public_url else local_url(s)
    lines = [f"Tidings {__version__} listening on {url} ({s.workers} process(es))"]
    if s.host in ("0.0.0.0", "::") and not s.public_url:
        lan = _lan_address()
        if lan:
            lines.append(f"  also reachable at http://{lan}:{s.port} (every interface)")
    if embedded:
        lines.append(f"  embedded data in {s.data_dir}/ (PostgreSQL and Redis stop with Ctrl-C)")
    if s.dev_mode:
        lines.append("  a user token:    tidings token alice")
        lines.append("  producer key:    tidings token --producer")
        lines.append(f"  demo inbox:      {url}/")
        if not config.is_loopback(s.host):
            lines.append(f"  WARNING: dev mode on {s.host}: anyone who reaches this port gets a"
                         " token for any user (/api/v1/dev/token); set TIDINGS_DEV=false")
    if s.admin_keys:
        lines.append(f"  admin console:   {url}/admin")
    lines.append(f"  API description: {url}/api/v1/openapi.json")
    lines.extend(_metrics_lines(s, url))
    return "\n".join(lines)


def _metrics_lines(s: Settings, url: str) -> list[str]:
    """Where the metrics are scraped: each process's port, else the main port with a key."""
    if not s.metrics:
        return []
    if s.metrics_port is not None:
        host = local_url(replace(s, host=s.metrics_host, port=s.metrics_port))
        if s.workers == 1:
            return [f"  metrics:         {host}/metrics"]
        return [f"  metrics:         {host}/metrics to port {s.metrics_port + s.workers - 1}"
                " (one port per process)"]
    if s.workers > 1:
        return ["  metrics:         set TIDINGS_METRICS_PORT to scrape each process"]
    if s.admin_keys:
        return [f"  metrics:         {url}/metrics (with an admin key)"]
    return []


def cmd_serve(args: argparse.Namespace) -> int:
    settings = common.settings(args)
    common.setup_logging(settings)
    reach.check_port(settings.host, settings.port)
    if settings.metrics and settings.metrics_port is not None:
        for i in range(settings.workers):
            reach.check_port(settings.metrics_host, settings.metrics_port + i,
                             "TIDINGS_METRICS_PORT", "TIDINGS_METRICS_HOST")
    with embedded_servers(settings, postgres=settings.embedded_postgres,
                          redis=settings.embedded_redis) as embedded:
        settings = common.resolve(settings, *((embedded.database_url, embedded.redis_url)
                                              if embedded else ()))
        common.protect(settings)
        reach.reach_database(settings, migrate=settings.migrate)
        reach.reach_redis(settings)
        if embedded is not None:
            datadir.write_address(settings.data_dir, local_url(settings))
        text = banner(settings, embedded is not None)
        if settings.workers > 1:
            return _serve_workers(settings, text)
        _run_node(settings, text, reuse_port=False)
        return 0


def _run_node(settings: Settings, text: str | None, *, reuse_port: bool) -> None:
    from aiohttp import web

    from ..app import create_app

    tuning.raise_open_files()
    tuning.use_uvloop()
    tuning.tune_gc()
    web.run_app(
        create_app(replace(settings, migrate=False)), host=settings.host, port=settings.port,
        reuse_port=reuse_port, access_log=None, shutdown_timeout=10,
        print=(lambda _: print(text, flush=True)) if text else None,
    )


def _serve_workers(settings: Settings, text: str) -> int:
    """N node processes on one port (SO_REUSEPORT), process i with the metrics port
    PORT+i; signals are passed on to them."""
    one = replace(settings, workers=1, migrate=False, node_id=None, dev=settings.dev_mode)
    children = []
    for i in range(settings.workers):
        port = None if settings.metrics_port is None else settings.metrics_port + i
        env = {**os.environ, **config.to_env(replace(one, metrics_port=port))}
        children.append(subprocess.Popen([sys.executable, "-m", "tidings", "_node"], env=env,
                                          preexec_fn=die_with_parent))

    def forward(signum: int, _frame: Any) -> None:
        for child in children:
            if child.poll() is None:
                child.send_signal(signal.SIGTERM)

    signal.signal(signal.SIGINT, forward)
    signal.signal(signal.SIGTERM, forward)
    if _listening(settings, children):
        print(text, flush=True)
    codes = [child.wait() for child in children]
    return max(codes, default=0)


def _listening(settings: Settings, children: list[subprocess.Popen[bytes]]) -> bool:
    """Wait until the port accepts connections (the banner then tells the truth); False
    if a node process ended first."""
    url = urlsplit(local_url(settings))
    while all(child.poll() is None for child in children):
        try:
            socket.create_connection((url.hostname, url.port), timeout=1).close()
            return True
        except OSError:
            time.sleep(0.05)
    return False


def cmd_node(args: argparse.Namespace) -> int:
    """One worker process of ``serve --workers N`` (internal)."""
    settings = common.settings(args)
    common.setup_logging(settings)
    _run_node(settings, None, reuse_port=True)
    return 0


def cmd_migrate(args: argparse.Namespace) -> int:
    settings = common.settings(args, require_auth=False)
    with embedded_servers(settings, postgres=settings.embedded_postgres,
                          redis=False) as embedded:
        settings = common.resolve(settings, embedded.database_url if embedded else None)
        applied = reach.reach_database(settings, migrate=True)
    print("\n".join(f"applied {name}" for name in applied) or "schema is up to date")
    return 0
