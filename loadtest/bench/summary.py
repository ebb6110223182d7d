"""The sittings table: per measure, the median of the sittings with their range, Tidings beside
nchan, and the ratio of the medians.

Pure functions of the runs' reports (no I/O, no clock): :data:`MEASURES` says where
each figure comes from (which run of a sitting, which field); :func:`cells` gathers
one measure's values over the sittings for one target, with how many of its runs
were driver-bound, incorrect, failed, or (a throughput ladder that never broke) only
a lower bound; :func:`table` and :func:`per_sitting` render them. A run that is
missing or failed counts as a sitting without that figure, never as a zero.
"""

from __future__ import annotations

import statistics
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from .stats import median_range, ratio

DASH = "\u2013"
TIMES = "\u00d7"
DIVIDED = "\u00f7"
AT_LEAST = "\u2265"
TARGETS = ("tidings", "nchan")
Report = dict[str, Any]


def _get(report: Report, *path: str) -> Any:
    value: Any = report
    for key in path:
        if not isinstance(value, dict):
            return None
        value = value.get(key)
    return value


def _median_of(report: Report, scenario: str, key: str) -> float | None:
    reps = _get(report, "scenarios", scenario, "repeats") or []
    known = [r[key] for r in reps if r.get(key) is not None]
    return statistics.median(known) if known else None


@dataclass(frozen=True)
class Measure:
    key: str
    label: str
    run: str  # the run of a sitting it comes from
    scenario: str
    value: Callable[[Report], float | None]
    targets: tuple[str, ...] = TARGETS
    #: whether a driver-bound run makes the figure suspect (memory is not)
    driver_sensitive: bool = True


def measures(sizes: dict[str, Any]) -> list[Measure]:
    """The measures of issue 16, labelled with this plan's sizes."""
    rate, subs = sizes["rate"], sizes["subscribers"]
    at = f"at {rate:,}/s, {subs:,} sockets"
    recips = f"{sizes['recipients']:,}"
    small, large = sizes["idle_sockets"]
    return [
        Measure("cpu_delivery", f"node CPU per delivery {at} (ms)", "latency", "latency",
                lambda r: _get(r, "scenarios", "latency", "server_cpu_ms_per_delivery")),
        Measure("stack_delivery", f"node + PostgreSQL + Redis CPU per delivery {at} (ms)",
                "latency", "latency",
                lambda r: _get(r, "scenarios", "latency", "stack_cpu_ms_per_delivery")),
        Measure("p50", f"latency p50 {at} (ms)", "latency", "latency",
                lambda r: _get(r, "scenarios", "latency", "p50_ms")),
        Measure("p99", f"latency p99 {at} (ms)", "latency", "latency",
                lambda r: _get(r, "scenarios", "latency", "p99_ms")),
        Measure("fan_first", f"{recips}-recipient broadcast, first socket (ms, median of the "
                             "broadcasts)", "fanout", "fanout",
                lambda r: _get(r, "scenarios", "fanout", "first_median_ms")),
        Measure("fan_last", f"{recips}-recipient broadcast, last socket (ms, median of the "
                            "broadcasts)", "fanout", "fanout",
                lambda r: _get(r, "scenarios", "fanout", "last_median_ms")),
        Measure("fan_cpu", f"node CPU per {recips}-recipient broadcast (ms)", "fanout",
                "fanout", lambda r: _median_of(r, "fanout", "server_cpu_ms")),
        Measure("plain", "single-recipient publishes/s sustained, plain endpoint", "plain",
                "throughput", lambda r: _get(r, "scenarios", "throughput", "sustained",
                                             "offered_publishes_per_s")),
        Measure("batch", f"single-recipient publishes/s sustained, batch endpoint "
                         f"({sizes['per_request']} per request)", "batch", "throughput",
                lambda r: _get(r, "scenarios", "throughput", "sustained",
                               "offered_publishes_per_s"), targets=("tidings",)),
        Measure("cpu_connect", f"node CPU per connect, {small:,} sockets (ms)",
                f"idle-{small}", "idle",
                lambda r: _get(r, "scenarios", "idle", "server_cpu_ms_per_connect")),
        Measure("connects", f"connects/s, {small:,} sockets", f"idle-{small}", "idle",
                lambda r: _get(r, "scenarios", "idle", "connects_per_s")),
        Measure("mem_small", f"memory per idle socket at {small:,} (KiB)", f"idle-{small}",
                "idle", lambda r: _get(r, "scenarios", "idle", "kib_per_socket"),
                driver_sensitive=False),
        Measure("mem_large", f"memory per idle socket at {large:,} (KiB)", f"idle-{large}",
                "idle", lambda r: _get(r, "scenarios", "idle", "kib_per_socket"),
                driver_sensitive=False),
    ]


@dataclass
class Cell:
    """One measure for one target over the sittings."""

    values: list[float | None] = field(default_factory=list)
    #: per sitting, what qualifies its figure (driver-bound, a lower bound, incorrect, failed)
    marks: list[list[str]] = field(default_factory=list)
    driver_bound: int = 0
    incorrect: int = 0
    failed: int = 0
    lower_bound: int = 0

    @property
    def summary(self) -> dict[str, Any] | None:
        return median_range(self.values)


def _correct(report: Report, scenario: str) -> bool:
    c = _get(report, "scenarios", scenario, "correct") or {}
    return not c.get("missed") and not c.get("duplicates") and c.get("order_ok", True)


def _driver_bound(report: Report, scenario: str) -> bool:
    s = _get(report, "scenarios", scenario) or {}
    return bool((s.get("driver") or {}).get("bound")
                or (s.get("driver_at_break") or {}).get("bound"))


def cells(m: Measure, target: str, runs: list[dict[str, Any]], sittings: int) -> Cell:
    """``runs``: dicts with ``sitting`` (1-based), ``target``, ``run`` and ``report`` (None if
    the run failed)."""
    cell = Cell()
    for sitting in range(1, sittings + 1):
        found = [x for x in runs if x["sitting"] == sitting and x["target"] == target
                 and x["run"] == m.run]
        report = found[0]["report"] if found else None
        if report is None or m.scenario not in report.get("scenarios", {}):
            cell.failed += 1
            cell.values.append(None)
            cell.marks.append(["failed"])
            continue
        marks = []
        if m.driver_sensitive and _driver_bound(report, m.scenario):
            cell.driver_bound += 1
            marks.append("driver-bound")
        if m.scenario == "throughput" and not report["scenarios"][m.scenario].get(
                "ceiling_reached"):
            cell.lower_bound += 1
            marks.append("lower bound")
        if not _correct(report, m.scenario):
            cell.incorrect += 1
            marks.append("INCORRECT")
        cell.values.append(m.value(report))
        cell.marks.append(marks)
    return cell


def fmt(value: float | None) -> str:
    """Three significant figures or so, thousands separated; '-' for unknown."""
    if value is None:
        return "-"
    a = abs(value)
    if a >= 100:
        return f"{value:,.0f}"
    if a >= 10:
        return f"{value:.1f}"
    if a >= 1:
        return f"{value:.2f}"
    return f"{value:.3f}"


def cell_text(cell: Cell) -> str:
    s = cell.summary
    if s is None:
        return "-"
    text = fmt(s["median"])
    if s["n"] > 1:
        text += f" ({fmt(s['min'])}{DASH}{fmt(s['max'])})"
    if cell.lower_bound:
        text = f"{AT_LEAST} {text}"
    return text


def notes(cells_by_target: dict[str, Cell], sittings: int) -> str:
    out = []
    names = {"tidings": "Tidings", "nchan": "nchan"}
    for target, c in cells_by_target.items():
        for count, what in ((c.driver_bound, "driver-bound"),
                            (c.lower_bound, "no step broke (a lower bound)"),
                            (c.incorrect, "INCORRECT (missed, duplicate or out of order)"),
                            (c.failed, "no figure (run failed)")):
            if count:
                out.append(f"{names[target]}: {what} in {count} of {sittings}")
    return "; ".join(out)


def table(ms: list[Measure], runs: list[dict[str, Any]], sittings: int,
          targets: tuple[str, ...] = TARGETS) -> str:
    head = ["measure", *(f"{'Tidings' if t == 'tidings' else 'nchan'}: median (range)"
                         for t in targets)]
    if set(TARGETS) <= set(targets):
        head.append(f"Tidings {DIVIDED} nchan")
    head.append("notes")
    lines = ["| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
    for m in ms:
        by_target = {t: cells(m, t, runs, sittings) for t in targets if t in m.targets}
        row = [m.label] + [cell_text(by_target[t]) if t in by_target else "n/a"
                           for t in targets]
        if set(TARGETS) <= set(targets):
            both = [by_target.get(t) for t in TARGETS]
            sums = [c.summary if c else None for c in both]
            r = ratio(*(s["median"] if s else None for s in sums))
            row.append("-" if r is None else f"{fmt(r)}{TIMES}")
        row.append(notes(by_target, sittings))
        lines.append("| " + " | ".join(row) + " |")
    return "\n".join(lines) + "\n"


def per_sitting(ms: list[Measure], runs: list[dict[str, Any]], sittings: int,
                targets: tuple[str, ...] = TARGETS) -> str:
    """Every sitting's own figure, for the medians above to be checked against."""
    head = ["measure", "target", *(f"sitting {i}" for i in range(1, sittings + 1))]
    lines = ["| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
    for m in ms:
        for t in targets:
            if t not in m.targets:
                continue
            c = cells(m, t, runs, sittings)
            shown = [fmt(v) + (f" ({', '.join(k)})" if k else "")
                     for v, k in zip(c.values, c.marks, strict=True)]
            lines.append(f"| {m.label} | {t} | " + " | ".join(shown) + " |")
    return "\n".join(lines) + "\n"
