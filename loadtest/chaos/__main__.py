"""The full form: ``python -m loadtest.chaos --runs 5`` runs every scenario and writes the table.

Each run gets a fresh cluster (database, Redis, three nodes) on one private
PostgreSQL; the figures of a scenario's runs are summed. The markdown goes to
``--out`` (and stdout), each failed run's reasons below it; the exit status is 1
when any run failed. ``--keep`` keeps the folder with every process's log.
"""

from __future__ import annotations

import argparse
import asyncio
import shutil
import sys
import tempfile
import time
from dataclasses import fields
from pathlib import Path

from .cluster import private_postgres
from .report import table
from .run import FULL, SHORT, Size
from .scenarios import BY_NAME, SCENARIOS
from .verdict import Figures


async def main(args: argparse.Namespace, folder: Path) -> tuple[str, bool]:
    """Run the chosen scenarios under ``folder``: (the markdown, whether every run passed)."""
    size = SHORT if args.short else FULL
    for f in fields(Size):
        value = getattr(args, f.name, None)
        if value is not None:
            setattr(size, f.name, value)
    chosen = [BY_NAME[n] for n in args.scenarios.split(",")] if args.scenarios else SCENARIOS
    rows, problems = [], []
    started = time.monotonic()
    async with private_postgres(folder / "postgres") as pg:
        for scenario in chosen:
            total, passed = Figures(runs=0), 0
            for run in range(1, args.runs + 1):
                figures = await scenario.run(folder / f"{scenario.name}-{run}", pg, size)
                wrong = scenario.failures(figures)
                passed += not wrong
                verdict = "; ".join(wrong) or "ok"
                if wrong:
                    problems.append(f"- {scenario.name} run {run}: {verdict}")
                print(f"{scenario.name} run {run}: {verdict} {figures.notes}", flush=True)
                total.add(figures)
            rows.append((scenario.name, total, passed, scenario.push))
    text = table(rows) + "\n" + ("\n".join(["Failed runs:", *problems]) if problems else
                                 "Every run passed.") + "\n"
    text += f"\n{len(chosen)} scenarios x {args.runs} runs in {time.monotonic() - started:.0f} s\n"
    return text, not problems


def cli(argv: list[str] | None = None) -> int:
    args = parse(argv)
    folder = Path(tempfile.mkdtemp(prefix="tidings-chaos-"))
    folder.chmod(0o755)  # the PostgreSQL user must reach its data folder inside
    try:
        text, ok = asyncio.run(main(args, folder))
    finally:
        if args.keep:
            print(f"logs kept in {folder}", file=sys.stderr)
        else:
            shutil.rmtree(folder, ignore_errors=True)
    print(text)
    if args.out:
        Path(args.out).write_text(text)
    return 0 if ok else 1


def parse(argv: list[str] | None = None) -> argparse.Namespace:
    p = argparse.ArgumentParser(prog="python -m loadtest.chaos", description=__doc__.split(
        "\n")[0])
    p.add_argument("--runs", type=int, default=5, help="runs of each scenario (default 5)")
    p.add_argument("--scenarios", help="comma-separated names (default all): "
                   + ", ".join(BY_NAME))
    p.add_argument("--short", action="store_true", help="the short form's sizes")
    p.add_argument("--out", help="write the markdown table here too")
    p.add_argument("--keep", action="store_true", help="keep the folder with the logs")
    for name in ("users", "sockets", "storm", "push_users"):
        p.add_argument("--" + name.replace("_", "-"), dest=name, type=int)
    for name in ("rate", "seconds", "pg_outage"):
        p.add_argument("--" + name.replace("_", "-"), dest=name, type=float)
    return p.parse_args(argv)


if __name__ == "__main__":
    sys.exit(cli())
