"""Draw docs/benchmarks.png from ``python -m loadtest.bench`` results (needs matplotlib).

    python loadtest/chart.py loadtest/results/node1.json loadtest/results/node1-single.json \\
        [--peer PEER_RESULT.json ...] [--out docs/benchmarks.png]

Left: the throughput ladder (offered vs delivered per second, p99 latency).
Right: server CPU per delivery and memory per idle socket, Tidings vs the peer
(log scale), when peer results (the peer harness's JSON) are given.
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt


def main() -> None:
    p = argparse.ArgumentParser()
    p.add_argument("results", nargs="+")
    p.add_argument("--peer", nargs="*", default=[])
    p.add_argument("--out", default="docs/benchmarks.png")
    a = p.parse_args()
    reports = [json.loads(Path(f).read_text()) for f in a.results]
    fig, (ax1, ax3) = plt.subplots(1, 2, figsize=(12, 4.6))

    colors = iter(["tab:blue", "tab:green", "tab:purple"])
    ax2 = ax1.twinx()
    for r in reports:
        tp = r["scenarios"].get("throughput")
        if not tp:
            continue
        c = next(colors)
        xs = [s["offered_deliveries_per_s"] for s in tp["steps"]]
        ax1.plot(xs, [s["deliveries_per_s"] for s in tp["steps"]], "o-", color=c,
                 label=f"delivered/s, {tp['batch']} recipient(s) per publish")
        ax2.plot(xs, [s["p99_ms"] for s in tp["steps"]], "x--", color=c,
                 label=f"p99 ms, batch {tp['batch']}")
    top = max([s["offered_deliveries_per_s"] for r in reports
               for s in r["scenarios"].get("throughput", {}).get("steps", [])] or [1])
    ax1.plot([0, top], [0, top], ":", color="grey", label="offered = delivered")
    ax1.set_xlabel("offered deliveries per second")
    ax1.set_ylabel("delivered per second")
    ax2.set_ylabel("p99 publish-to-socket latency (ms, log)")
    ax2.set_yscale("log")
    ax1.set_title("One node process: throughput ladder")
    h1, l1 = ax1.get_legend_handles_labels()
    h2, l2 = ax2.get_legend_handles_labels()
    ax1.legend(h1 + h2, l1 + l2, fontsize=7, loc="upper left")

    ours_cpu = ours_mem = None
    for r in reports:
        s = r["scenarios"]
        if "latency" in s and s["latency"].get("server_cpu_ms_per_delivery") and ours_cpu is None:
            ours_cpu = s["latency"]["server_cpu_ms_per_delivery"]
        if "idle" in s and s["idle"].get("kib_per_socket"):
            ours_mem = s["idle"]["kib_per_socket"]
    peer_cpu = peer_mem = None
    for f in a.peer:
        r = json.loads(Path(f).read_text())
        peer_cpu = r.get("server_cpu_ms_per_delivery") or peer_cpu
        peer_mem = r.get("rss_kib_per_conn") or peer_mem
    labels, ours, peer = [], [], []
    if ours_cpu and peer_cpu:
        labels.append("server CPU ms per delivery\n(each at its sustained rate)")
        ours.append(ours_cpu)
        peer.append(peer_cpu)
    if ours_mem and peer_mem:
        labels.append("KiB RSS per\nidle socket")
        ours.append(ours_mem)
        peer.append(peer_mem)
    xs = range(len(labels))
    ax3.bar([x - 0.2 for x in xs], ours, 0.4, label="Tidings", color="tab:blue")
    ax3.bar([x + 0.2 for x in xs], peer, 0.4, label="django-notifications-websocket",
            color="tab:orange")
    for x, o, q in zip(xs, ours, peer, strict=True):
        ax3.text(x - 0.2, o, f"{o:g}", ha="center", va="bottom", fontsize=8)
        ax3.text(x + 0.2, q, f"{q:g}", ha="center", va="bottom", fontsize=8)
    ax3.set_xticks(list(xs), labels)
    ax3.set_yscale("log")
    ax3.set_title("Same machine: lower is better (log scale)")
    ax3.legend(fontsize=8)
    fig.tight_layout()
    Path(a.out).parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(a.out, dpi=110)
    print(f"wrote {a.out}")


if __name__ == "__main__":
    main()
