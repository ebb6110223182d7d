"""Process sampling from /proc: RSS and CPU of the server under test, of its PostgreSQL and
Redis, and of the driver itself.

:class:`DriverCpu` times the driver's own processes (this one and any socket holders it
started) over a measured window; :func:`driver_figures` turns two of its samples into
the figures every scenario reports, with ``bound`` set when the driver used more than
:data:`DRIVER_BOUND` of a core in the window (then the driver, not the server, may be
what the figure measures). CPU time is read from each thread's ``schedstat``
(nanoseconds; a thread that ended between two samples is not counted), so even a
30 ms broadcast window is measured, not rounded to clock ticks.
"""

from __future__ import annotations

import contextlib
import os
import time
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlsplit

CLK = os.sysconf("SC_CLK_TCK")
PAGE_KIB = os.sysconf("SC_PAGE_SIZE") / 1024
#: A window where the driver's processes together used more of a core than this is driver-bound.
DRIVER_BOUND = 0.8


def cpu_seconds(pid: int) -> float | None:
    """CPU seconds of a process: its threads' run time from ``schedstat`` (nanoseconds),
    or, where the kernel keeps no schedstat, ``stat``'s clock ticks (10 ms). None if gone."""
    try:
        total = 0
        for task in os.listdir(f"/proc/{pid}/task"):
            with open(f"/proc/{pid}/task/{task}/schedstat") as f:
                total += int(f.read().split()[0])
        return total / 1e9
    except (FileNotFoundError, ProcessLookupError, IndexError, ValueError):
        pass
    try:
        with open(f"/proc/{pid}/stat") as f:
            fields = f.read().rsplit(")", 1)[1].split()
        return (int(fields[11]) + int(fields[12])) / CLK
    except (FileNotFoundError, ProcessLookupError, IndexError, ValueError):
        return None


def proc_stat(pid: int) -> tuple[float, float] | None:
    """(RSS KiB, CPU seconds of all its threads) of one process, or None if it is gone."""
    try:
        with open(f"/proc/{pid}/statm") as f:
            rss = int(f.read().split()[1]) * PAGE_KIB
    except (FileNotFoundError, ProcessLookupError, IndexError, ValueError):
        return None
    cpu = cpu_seconds(pid)
    return None if cpu is None else (rss, cpu)


def children(pid: int) -> list[int]:
    """The direct children of a process (empty if it is gone)."""
    out: list[int] = []
    with contextlib.suppress(FileNotFoundError, ProcessLookupError):
        for task in os.listdir(f"/proc/{pid}/task"):
            with contextlib.suppress(FileNotFoundError, ProcessLookupError), \
                    open(f"/proc/{pid}/task/{task}/children") as f:
                out += [int(p) for p in f.read().split()]
    return out


def descendants(pid: int) -> list[int]:
    """A process and everything below it."""
    found, todo = [], [pid]
    while todo:
        p = todo.pop()
        found.append(p)
        todo += children(p)
    return found


def cmdline(pid: int) -> str:
    try:
        with open(f"/proc/{pid}/cmdline", "rb") as f:
            return f.read().replace(b"\0", b" ").decode(errors="replace")
    except (FileNotFoundError, ProcessLookupError):
        return ""


def sample(pids: list[int]) -> dict[str, float] | None:
    """Summed RSS (KiB) and CPU seconds of the processes still alive; None if none is."""
    stats = [s for s in map(proc_stat, pids) if s is not None]
    if not stats:
        return None
    return {"rss_kib": sum(s[0] for s in stats), "cpu_s": sum(s[1] for s in stats)}


def listeners(url: str) -> list[int]:
    """The processes serving a loopback ``url`` (PostgreSQL, Redis): whoever listens on its
    TCP port, or on the PostgreSQL Unix socket in its ``?host=`` folder; only the topmost
    of them (a postmaster, not the backends that inherited its socket). Empty when none
    can be seen (psutil missing, or not allowed to see other users' sockets)."""
    parts = urlsplit(url)
    socket_dir = parse_qs(parts.query).get("host", [""])[0]
    port = parts.port or {"postgresql": 5432, "postgres": 5432, "redis": 6379}.get(
        parts.scheme)
    try:
        import psutil
    except ImportError:
        return []
    found: set[int] = set()
    with contextlib.suppress(psutil.Error, OSError):
        if not parts.hostname and socket_dir.startswith("/"):
            path = f"{socket_dir.rstrip('/')}/.s.PGSQL.{parts.port or 5432}"
            found = {c.pid for c in psutil.net_connections(kind="unix")
                     if c.pid and c.laddr == path}
        else:
            found = {c.pid for c in psutil.net_connections(kind="tcp")
                     if c.status == psutil.CONN_LISTEN and c.laddr and c.laddr.port == port
                     and c.pid}
    return sorted(p for p in found if _parent(p) not in found)


def _parent(pid: int) -> int | None:
    try:
        with open(f"/proc/{pid}/stat") as f:
            return int(f.read().rsplit(")", 1)[1].split()[1])
    except (FileNotFoundError, ProcessLookupError, IndexError, ValueError):
        return None


def holding(path: str) -> list[int]:
    """Processes whose command line names ``path`` (the embedded servers of a data folder)."""
    out = []
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit() and path in cmdline(int(entry.name)):
            out.append(int(entry.name))
    return out


class DriverCpu:
    """CPU seconds of the driver: this process and the socket holders it registers."""

    def __init__(self) -> None:
        self.pids = [os.getpid()]

    def add(self, pid: int) -> None:
        self.pids.append(pid)

    def remove(self, pid: int) -> None:
        with contextlib.suppress(ValueError):
            self.pids.remove(pid)

    def sample(self) -> dict[str, Any]:
        """Per-process CPU seconds and the monotonic time they were read at."""
        per = {}
        for pid in self.pids:
            cpu = cpu_seconds(pid)
            if cpu is not None:
                per[pid] = cpu
        return {"at": time.monotonic(), "cpu": per}


def driver_figures(before: dict[str, Any], after: dict[str, Any],
                   threshold: float = DRIVER_BOUND) -> dict[str, Any]:
    """The driver's CPU over the window between two :meth:`DriverCpu.sample` results:
    ``util`` is the cores its processes used together, ``busiest`` the one process
    that used most; ``bound`` is ``util > threshold``."""
    wall = max(1e-9, after["at"] - before["at"])
    used = {pid: after["cpu"][pid] - before["cpu"].get(pid, 0.0) for pid in after["cpu"]}
    cpu = sum(used.values())
    return {"cpu_s": round(cpu, 3), "wall_s": round(wall, 3), "util": round(cpu / wall, 3),
            "busiest": round(max(used.values(), default=0.0) / wall, 3),
            "procs": len(used), "bound": cpu / wall > threshold, "threshold": threshold}


def merge_driver(windows: list[dict[str, Any]]) -> dict[str, Any] | None:
    """Several windows of one scenario as one: CPU and wall summed, ``bound`` recomputed."""
    if not windows:
        return None
    cpu = sum(w["cpu_s"] for w in windows)
    wall = max(1e-9, sum(w["wall_s"] for w in windows))
    threshold = windows[0]["threshold"]
    return {"cpu_s": round(cpu, 3), "wall_s": round(wall, 3), "util": round(cpu / wall, 3),
            "busiest": max(w["busiest"] for w in windows),
            "procs": max(w["procs"] for w in windows), "bound": cpu / wall > threshold,
            "threshold": threshold, "windows": len(windows)}
