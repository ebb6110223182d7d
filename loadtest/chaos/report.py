"""The markdown tables of the figures: one row per scenario, sums over its runs."""

from __future__ import annotations

import statistics

from .verdict import Figures

SOCKET_HEAD = ("| scenario | runs | passed | acknowledged | delivered | duplicates | out of order"
               " | lost | unexpected | resets | counts wrong | no-2xx answers | error answer stored"
               " | recovery s (median / max) |")
PUSH_HEAD = ("| scenario | runs | passed | acknowledged | owed pushes | pushed | missing"
             " | duplicates | in-flight bound | without collapse id | not in delivery log"
             " | sent over 15 s late | no-2xx answers | recovery s (median / max) |")


def _recovery(f: Figures) -> str:
    if not f.recovery:
        return "-"
    return f"{statistics.median(f.recovery):.2f} / {max(f.recovery):.2f}"


def _errors(f: Figures) -> str:
    return ", ".join(f"{k}: {v}" for k, v in sorted(f.errors.items())) or "0"


def socket_row(name: str, f: Figures, passed: int) -> str:
    cells = [name, f.runs, passed, f.acknowledged, f.delivered, f.duplicates, f.out_of_order,
             f.lost, f.unexpected, f.resets, f.counts_wrong, _errors(f), f.error_stored,
             _recovery(f)]
    return "| " + " | ".join(str(c) for c in cells) + " |"


def push_row(name: str, f: Figures, passed: int) -> str:
    p = f.push
    cells = [name, f.runs, passed, f.acknowledged, p["owed"], p["pushed"], p["missing"],
             p["duplicates"], p["in-flight bound"], p["without collapse id"],
             p["not in delivery log"], p["slower than takeover bound"], _errors(f),
             _recovery(f)]
    return "| " + " | ".join(str(c) for c in cells) + " |"


def table(rows: list[tuple[str, Figures, int, bool]]) -> str:
    """``rows``: (scenario, summed figures, runs passed, is a push scenario)."""
    out = []
    for push, head, row in ((False, SOCKET_HEAD, socket_row), (True, PUSH_HEAD, push_row)):
        chosen = [r for r in rows if r[3] == push]
        if chosen:
            out += [head, "|" + "---|" * head.count(" | ") + "---|"]
            out += [row(name, f, passed) for name, f, passed, _ in chosen]
            out.append("")
    return "\n".join(out)
