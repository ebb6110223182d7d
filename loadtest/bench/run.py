"""What every scenario of one benchmark run shares: the target, the tally, the driver's CPU.

A :class:`Run` names the run's users (a random run id, so users are fresh), makes
crowds of sockets, and opens measured windows: a :class:`Window` reads the node's
CPU and RSS, its PostgreSQL and Redis CPU and the driver's CPU at both ends of one
measured stretch (a rate step, a broadcast, a connect phase), the driver innermost
so its own sampling is left out.
"""

from __future__ import annotations

import argparse
import secrets
from typing import Any

from .procs import DriverCpu, driver_figures
from .sockets import Crowd, Tally
from .targets import Target


class Window:
    """Node, PostgreSQL/Redis and driver figures between its creation and :meth:`end`."""

    def __init__(self, run: Run):
        self.run = run
        self.node = run.server.sample()
        self.support = run.server.support_sample()
        self.driver = run.cpu.sample()

    def end(self) -> dict[str, Any]:
        driver = self.run.cpu.sample()
        node = self.run.server.sample()
        support = self.run.server.support_sample()
        out: dict[str, Any] = {
            "wall_s": driver["at"] - self.driver["at"],
            "driver": driver_figures(self.driver, driver, self.run.args.driver_bound),
            "node_cpu_s": None, "support_cpu_s": None, "rss_kib": None,
        }
        if self.node and node:
            out["node_cpu_s"] = node["cpu_s"] - self.node["cpu_s"]
            out["rss_kib"] = node["rss_kib"]
        if self.support and support:
            out["support_cpu_s"] = support["cpu_s"] - self.support["cpu_s"]
        return out


class Run:
    def __init__(self, args: argparse.Namespace, server: Target):
        self.args = args
        self.server = server
        self.run_id = secrets.token_hex(3)
        self.tally = Tally()
        self.cpu = DriverCpu()

    def crowd(self) -> Crowd:
        return Crowd(self.server.endpoint, self.tally, self.args.sources, self.args.per_source)

    def prefix(self, name: str) -> str:
        return f"bench-{self.run_id}-{name}"

    def window(self) -> Window:
        return Window(self)
