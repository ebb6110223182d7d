"""One run's report: the JSON as measured, and a markdown table of it.

Each scenario's row says what was measured, whether every socket got everything once
and in order, and the driver's CPU in the measured windows; a run whose driver used
more than its threshold (0.8 of a core by default) is marked **driver-bound**, as is
a throughput ladder whose break step was. The machine's facts head the markdown, and a
warning when the machine was not quiet when the run started.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any


def driver_cell(r: dict[str, Any]) -> str:
    d = r.get("driver")
    if not d:
        return "-"
    text = f"{d['util']} cores (busiest process {d['busiest']}, {d['procs']} processes)"
    marks = []
    if d["bound"]:
        marks.append("**driver-bound**")
    brk = r.get("driver_at_break")
    if brk and brk["bound"]:
        marks.append(f"**driver-bound at the break** ({brk['util']} cores)")
    return " ".join([text, *marks])


def result_cell(name: str, r: dict[str, Any]) -> str:
    if name == "idle":
        return (f"{r['connected']}/{r['sockets']} sockets, {r['connects_per_s']} connects/s, "
                f"{r.get('server_cpu_ms_per_connect')} ms node CPU per connect, "
                f"{r.get('kib_per_socket')} KiB/socket (RSS {r.get('rss_before_mib')} → "
                f"{r.get('rss_after_mib')} MiB), {r['open_after_hold']} open after "
                f"{r['held_s']} s")
    if name == "fanout":
        return (f"{r['recipients']} recipients: first socket median {r['first_median_ms']} ms, "
                f"last median {r['last_median_ms']} ms (POST {r['post_median_ms']} ms), "
                f"over {len(r['repeats'])} publishes, {r['driver_procs']} driver process(es)")
    if name == "latency":
        return (f"{r['rate']}/s to {r['subscribers']} sockets: p50 {r['p50_ms']} p95 "
                f"{r['p95_ms']} p99 {r['p99_ms']} max {r['max_ms']} ms, "
                f"{r.get('server_cpu_ms_per_delivery')} ms node CPU per delivery "
                f"({r.get('stack_cpu_ms_per_delivery')} with PostgreSQL and Redis)")
    if name == "throughput":
        s = r.get("sustained") or {}
        bound = "" if r["ceiling_reached"] else " (no step broke: a lower bound)"
        per = "" if r["per_request"] == 1 else f" ({r['per_request']} per request)"
        return (f"batch {r['batch']}, {r['endpoint']} endpoint{per}: "
                f"sustained {s.get('offered_publishes_per_s')} publishes/s{bound}, "
                f"{s.get('deliveries_per_s')} deliveries/s, p50 {s.get('p50_ms')} p99 "
                f"{s.get('p99_ms')} ms, {s.get('deliveries_per_cpu_s')} deliveries per node "
                f"CPU-s; steps {[x['offered_deliveries_per_s'] for x in r['steps']]}")
    if name == "recovery":
        return (f"{r['missed_per_reconnect']} missed: last replayed after median "
                f"{r['median_ms']} ms over {len(r['repeats'])} reconnects")
    return ""


def correct_cell(r: dict[str, Any]) -> str:
    c = r.get("correct", {})
    return (f"missed {c.get('missed')}, duplicates {c.get('duplicates')}, "
            f"order {'ok' if c.get('order_ok') else 'BROKEN'}")


def machine_lines(report: dict[str, Any]) -> list[str]:
    m = report["machine"]
    q = report.get("quiet") or {}
    lines = [f"- target: {report['target']}; commit {m.get('commit')}"
             f"{' (with uncommitted changes)' if m.get('dirty') else ''}",
             f"- {m.get('cpus')} CPUs ({m.get('cpu_model')}), {m.get('memory_gib')} GiB, "
             f"{m.get('os')}, kernel {m.get('kernel')}, Python {m.get('python')}, "
             f"open files {m.get('nofile')}",
             f"- load average at start {q.get('loadavg')}, {q.get('busy_cores')} cores busy"]
    if q.get("problems"):
        lines.append("- **WARNING: the machine was not quiet at the start; these figures "
                     "include its neighbours:** " + "; ".join(q["problems"]))
    return lines


def markdown(report: dict[str, Any]) -> str:
    rows = ["| scenario | result | correctness | driver CPU in the measured windows |",
            "|---|---|---|---|"]
    for name, r in report["scenarios"].items():
        rows.append(f"| {name} | {result_cell(name, r)} | {correct_cell(r)} | "
                    f"{driver_cell(r)} |")
    return "\n".join([*machine_lines(report), "", *rows]) + "\n"


def correct_ok(report: dict[str, Any]) -> bool:
    for r in report["scenarios"].values():
        c = r.get("correct", {})
        if c.get("missed") or c.get("duplicates") or not c.get("order_ok", True):
            return False
    return True


def driver_bound(report: dict[str, Any]) -> bool:
    """Whether any scenario of the run was marked driver-bound."""
    return any((r.get("driver") or {}).get("bound")
               or (r.get("driver_at_break") or {}).get("bound")
               for r in report["scenarios"].values())


def save(out: Path, label: str, report: dict[str, Any]) -> None:
    out.parent.mkdir(parents=True, exist_ok=True)
    report["driver_bound"] = driver_bound(report)
    Path(f"{out}.json").write_text(json.dumps(report, indent=2, default=str) + "\n")
    Path(f"{out}.md").write_text(f"# {label}\n\n`{report['command']}`\n\n" + markdown(report))
