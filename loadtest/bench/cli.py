"""``python -m loadtest.bench``: the options, one run of the scenarios named, its report files.

The run starts its target (a Tidings node, or nginx + nchan with ``--target nchan``),
runs each scenario in the order given, stops the target, and writes
``<out>.json`` and ``<out>.md`` (default ``loadtest/results/<label>``). The exit
status is 1 when any scenario saw a missed, duplicate or out-of-order notification.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import resource
import sys
import time
from pathlib import Path
from typing import Any

from . import __doc__ as PACKAGE_DOC
from . import fanout, idle, machine, rates, recovery
from .procs import DRIVER_BOUND
from .report import correct_ok, markdown, save
from .run import Run
from .targets import NchanServer, Target, TidingsServer

RESULTS = Path(__file__).resolve().parents[1] / "results"
SCENARIOS = {"idle": idle.run, "fanout": fanout.run, "throughput": rates.throughput,
             "latency": rates.latency, "recovery": recovery.run}
NCHAN_SCENARIOS = {"idle", "fanout", "latency", "throughput"}


def raise_nofile() -> int:
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    for limit in (1_048_576, hard):
        with contextlib.suppress(ValueError, OSError):
            resource.setrlimit(resource.RLIMIT_NOFILE, (limit, max(limit, hard)))
            return limit
    return soft


async def main_async(args: argparse.Namespace) -> int:
    nofile = raise_nofile()
    quiet = await asyncio.to_thread(machine.quiet, args.quiet_seconds)
    server: Target = NchanServer(args) if args.target == "nchan" else TidingsServer(args)
    report: dict[str, Any] = {
        "label": args.label, "started": time.strftime("%Y-%m-%dT%H:%M:%S"),
        "command": " ".join(["python -m loadtest.bench", *sys.argv[1:]]),
        "machine": {**machine.facts(), "nofile_raised_to": nofile}, "quiet": quiet,
        "target": args.target,
        "server": {"workers": args.workers, "database": "embedded" if not args.database_url
                   else "given", "redis": "embedded" if not args.redis_url else "given",
                   "external": bool(args.url)},
        "driver": {"procs": args.driver_procs, "uvloop": args.uvloop,
                   "bound_threshold": args.driver_bound},
        "scenarios": {},
    }
    if quiet["problems"]:
        print("WARNING: the machine is not quiet: " + "; ".join(quiet["problems"]),
              file=sys.stderr)
    try:
        await server.start()
        report["server"]["url"] = server.url
        report["server"]["unsampled"] = server.support_missing
        run = Run(args, server)
        for name in args.scenarios:
            print(f"running {name}...", file=sys.stderr)
            report["scenarios"][name] = await SCENARIOS[name](run)
            print(json.dumps(report["scenarios"][name], default=str)[:600], file=sys.stderr)
    finally:
        server.stop()
    save(Path(args.out) if args.out else RESULTS / args.label, args.label, report)
    print(markdown(report))
    return 0 if correct_ok(report) else 1


def parse(argv: list[str] | None = None) -> argparse.Namespace:
    p = argparse.ArgumentParser(prog="python -m loadtest.bench", description=PACKAGE_DOC,
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("scenarios", nargs="+", choices=list(SCENARIOS))
    g = p.add_argument_group("server")
    g.add_argument("--target", choices=["tidings", "nchan"], default="tidings",
                   help="nchan: nginx + nchan started here (idle, fanout, latency, throughput)")
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
    s.add_argument("--rate", type=float, default=1000, help="latency: notifications per second")
    s.add_argument("--seconds", type=float, default=10, help="latency/throughput: step length")
    s.add_argument("--batch", type=int, default=50, help="throughput: recipients per notification")
    s.add_argument("--endpoint", choices=["plain", "batch"], default="plain",
                   help="throughput/latency: POST /api/v1/notifications, or .../batch")
    s.add_argument("--per-request", type=int, default=100,
                   help="--endpoint batch: notifications per request (at most 1,000)")
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
    d = p.add_argument_group("driver")
    d.add_argument("--driver-procs", type=int, default=1,
                   help="idle, fanout: processes holding the sockets (the broadcast's receivers"
                        " are then not bound by one Python process)")
    d.add_argument("--driver-bound", type=float, default=DRIVER_BOUND,
                   help="cores of driver CPU in a measured window past which it is marked"
                        " driver-bound")
    d.add_argument("--uvloop", action="store_true", help="run the driver on uvloop")
    d.add_argument("--quiet-seconds", type=float, default=1.0,
                   help="seconds to sample the machine's load before the run")
    p.add_argument("--label", default=None, help="results file name (no extension)")
    p.add_argument("--out", default=None, help="results path without extension")
    args = p.parse_args(argv)
    if args.target == "nchan" and (set(args.scenarios) - NCHAN_SCENARIOS or args.url
                                   or args.endpoint != "plain"):
        p.error("--target nchan runs idle, fanout, latency and throughput (plain endpoint),"
                " on its own server")
    if not 1 <= args.per_request <= 1000:
        p.error("--per-request is 1 to 1,000")
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
