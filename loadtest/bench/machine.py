"""What machine and code a benchmark ran on, and whether the machine was quiet.

:func:`facts` records the git commit (and whether the tree had changes), the CPU,
memory, kernel, Python and library versions, the open-files limit, and the nginx and
nchan versions when they are installed. :func:`quiet` samples the whole machine for a
few seconds: its load average, the share of all cores that was busy, and every
process that used more than :data:`BUSY_PROCESS` of a core. Figures taken on a busy
machine measure the neighbours too; the sittings runner refuses to start on one.
"""

from __future__ import annotations

import contextlib
import os
import platform
import resource
import subprocess
import time
from importlib import metadata
from pathlib import Path
from typing import Any

from .procs import CLK, cmdline

ROOT = Path(__file__).resolve().parents[2]
#: A process using more of a core than this during the sample makes the machine busy.
BUSY_PROCESS = 0.1
#: So does all cores' busy time summed past this many cores.
BUSY_CORES = 0.25
#: And a one-minute load average above this.
MAX_LOAD = 0.5
LIBRARIES = ("aiohttp", "asyncpg", "redis", "hiredis", "orjson", "msgspec", "uvloop", "PyJWT")


def _run(*argv: str) -> str:
    with contextlib.suppress(OSError, subprocess.SubprocessError):
        done = subprocess.run(argv, capture_output=True, text=True, timeout=10, check=False)
        return (done.stdout + done.stderr).strip()
    return ""


def _first(path: str, key: str) -> str | None:
    with contextlib.suppress(OSError):
        for line in Path(path).read_text().splitlines():
            if line.startswith(key):
                return line.split(":", 1)[1].strip() if ":" in line else line.split("=", 1)[1]
    return None


def commit() -> dict[str, Any]:
    """The checkout's commit, and whether tracked files differ from it."""
    head = _run("git", "-C", str(ROOT), "rev-parse", "HEAD")
    status = _run("git", "-C", str(ROOT), "status", "--porcelain", "--untracked-files=no")
    return {"commit": head if len(head) == 40 else None, "dirty": bool(status)}


def facts() -> dict[str, Any]:
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    versions = {}
    for name in LIBRARIES:
        with contextlib.suppress(metadata.PackageNotFoundError):
            versions[name] = metadata.version(name)
    mem = _first("/proc/meminfo", "MemTotal")
    return {
        **commit(),
        "cpu_model": _first("/proc/cpuinfo", "model name"),
        "cpus": os.cpu_count(), "usable_cpus": len(os.sched_getaffinity(0)),
        "memory_gib": round(int(mem.split()[0]) / 1024 ** 2, 1) if mem else None,
        "os": (_first("/etc/os-release", "PRETTY_NAME") or "").strip('"') or None,
        "kernel": platform.release(), "python": platform.python_version(),
        "libraries": versions, "nofile": {"soft": soft, "hard": hard},
        "nginx": _run("/usr/sbin/nginx", "-v").replace("nginx version: ", "") or None,
        "nchan": _run("dpkg-query", "-W", "-f=${Version}", "libnginx-mod-nchan") or None,
    }


def _cpu_times() -> tuple[float, float]:
    """(busy, total) jiffies of all cores since boot."""
    fields = [int(x) for x in Path("/proc/stat").read_text().split("\n", 1)[0].split()[1:]]
    idle = fields[3] + fields[4]  # idle + iowait
    total = sum(fields[:8])
    return total - idle, total


def _per_process() -> dict[int, float]:
    out = {}
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        with contextlib.suppress(OSError, IndexError, ValueError):
            fields = (entry / "stat").read_text().rsplit(")", 1)[1].split()
            out[int(entry.name)] = (int(fields[11]) + int(fields[12])) / CLK
    return out


def quiet(seconds: float = 3.0, ignore: frozenset[int] = frozenset(),
          max_load: float | None = MAX_LOAD) -> dict[str, Any]:
    """Sample the machine for ``seconds``; ``problems`` lists why it is not quiet (empty if
    it is). Processes in ``ignore`` (and this one) are not counted as neighbours. The load
    average, which trails the last minutes, is judged only when ``max_load`` is given."""
    load = os.getloadavg()
    busy0, total0 = _cpu_times()
    procs0 = _per_process()
    t0 = time.monotonic()
    time.sleep(seconds)
    busy1, total1 = _cpu_times()
    procs1 = _per_process()
    wall = time.monotonic() - t0
    cores = (busy1 - busy0) / max(1, total1 - total0) * (os.cpu_count() or 1)
    mine = {os.getpid(), *ignore}
    busy = sorted(
        ({"pid": pid, "cores": round((cpu - procs0[pid]) / wall, 2),
          "command": cmdline(pid)[:120]}
         for pid, cpu in procs1.items()
         if pid in procs0 and pid not in mine and (cpu - procs0[pid]) / wall > BUSY_PROCESS),
        key=lambda p: -p["cores"])
    problems = []
    if max_load is not None and load[0] > max_load:
        problems.append(f"load average {load[0]:.2f} > {max_load}")
    if cores > BUSY_CORES:
        problems.append(f"{cores:.2f} cores busy over {seconds:g} s > {BUSY_CORES}")
    problems += [f"pid {p['pid']} used {p['cores']} of a core: {p['command']}" for p in busy]
    return {"loadavg": [round(x, 2) for x in load], "busy_cores": round(cores, 2),
            "busy_processes": busy, "problems": problems}
