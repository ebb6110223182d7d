"""Tidings nodes as real processes (``python -m tidings _node``), for multi-node tests."""

from __future__ import annotations

import asyncio
import os
import signal
import subprocess
import sys
from dataclasses import replace

import psutil

from tidings import config
from tidings.embedded import free_port

from helpers import healthy


class NodeProcess:
    def __init__(self, settings: config.Settings, **changes: object):
        self.port = free_port()
        self.settings = replace(settings, port=self.port, workers=1, migrate=False,
                                node_id=None, **changes)
        self.url = f"http://127.0.0.1:{self.port}"
        self.proc: subprocess.Popen[bytes] | None = None
        self.node_id: str | None = None

    async def start(self) -> NodeProcess:
        env = {k: v for k, v in os.environ.items() if not k.startswith("TIDINGS_")}
        env.update(config.to_env(self.settings))
        self.proc = subprocess.Popen([sys.executable, "-m", "tidings", "_node"], env=env)
        self.node_id = (await healthy(self.url, self.proc))["node"]
        return self

    def rss(self) -> int:
        assert self.proc is not None
        return psutil.Process(self.proc.pid).memory_info().rss

    async def stop(self, sig: int = signal.SIGTERM) -> int:
        assert self.proc is not None
        if self.proc.poll() is None:
            self.proc.send_signal(sig)
        return await asyncio.to_thread(self.proc.wait, 30)


class Nodes:
    """Start nodes; stop every one still running at the end of the test."""

    def __init__(self, settings: config.Settings):
        self.settings = settings
        self.started: list[NodeProcess] = []

    async def start(self, **changes: object) -> NodeProcess:
        node = NodeProcess(self.settings, **changes)
        self.started.append(node)
        return await node.start()

    async def stop_all(self) -> None:
        for node in self.started:
            if node.proc is not None and node.proc.poll() is None:
                await node.stop(signal.SIGKILL)
