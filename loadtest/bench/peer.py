"""django-notifications-websocket, as its own harness recorded it: the figures kept beside ours.

The peer runs under its own harness (one daphne process, its own PostgreSQL and
Redis; see the benchmarks document), not in a sitting of this driver, so its
figures are quoted from the JSON reports copied into ``loadtest/results/``
(``peer-djnw-*.json``): node CPU per delivery, latency, connects per second at its
sustainable load, and memory per idle socket. :func:`figures` reads what those
reports hold; :func:`markdown` is the table that stands beside the sittings' table.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

RECORDED = sorted((Path(__file__).resolve().parents[1] / "results").glob("peer-djnw-*.json"))


def figures(paths: list[Path]) -> list[dict[str, Any]]:
    """One row per peer report: what it measured, at which load."""
    rows = []
    for path in paths:
        r = json.loads(path.read_text())
        p = r.get("params", {})
        notify = r.get("notify", {})
        lat = notify.get("latency_ms") or {}
        rows.append({
            "report": path.name, "connections": p.get("C"),
            "rate": p.get("rate") or None, "notifications": notify.get("trigger_calls"),
            "cpu_ms_per_delivery": r.get("server_cpu_ms_per_delivery"),
            "p50_ms": lat.get("p50"), "p99_ms": lat.get("p99"),
            "connects_per_s": (r.get("connect") or {}).get("rate_per_s"),
            "kib_per_socket": r.get("rss_kib_per_conn") if not notify.get("trigger_calls")
            else None,
        })
    return rows


def markdown(paths: list[Path]) -> str:
    if not paths:
        return ""
    lines = ["| peer report | load | server CPU per delivery | latency p50 / p99 | "
             "connects/s | memory per idle socket |", "|---|---|---|---|---|---|"]

    def cell(value: Any, unit: str = "") -> str:
        return "-" if value is None else f"{value}{unit}"

    for f in figures(paths):
        load = (f"{f['connections']} sockets, {f['rate']:g}/s" if f["rate"]
                else f"{f['connections']} idle sockets")
        lat = ("-" if f["p50_ms"] is None or not f["rate"]
               else f"{f['p50_ms']} / {f['p99_ms']} ms")
        lines.append(f"| {f['report']} | {load} | {cell(f['cpu_ms_per_delivery'], ' ms')} | "
                     f"{lat} | {cell(f['connects_per_s'])} | {cell(f['kib_per_socket'], ' KiB')} |")
    return "\n".join(lines) + "\n"
