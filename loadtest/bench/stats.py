"""Pure arithmetic of the benchmark figures: percentiles, milliseconds, medians with ranges.

Nothing here reads a clock or does I/O: every function maps numbers to numbers,
so the property tests in ``tests/loadtest/test_stats.py`` can pin them down.
"""

from __future__ import annotations

import statistics
from typing import Any


def pct(values: list[float], q: float) -> float | None:
    """The ``q``-th percentile by nearest rank on the sorted values; None when empty."""
    if not values:
        return None
    s = sorted(values)
    return s[min(len(s) - 1, max(0, round(q / 100 * (len(s) - 1))))]


def ms(seconds: float | None) -> float | None:
    """Seconds as milliseconds rounded to 0.01; None stays None."""
    return None if seconds is None else round(seconds * 1000, 2)


def lat_summary(values: list[float]) -> dict[str, Any]:
    """Count and p50/p95/p99/max (ms) of latencies given in seconds."""
    return {"n": len(values), "p50_ms": ms(pct(values, 50)), "p95_ms": ms(pct(values, 95)),
            "p99_ms": ms(pct(values, 99)), "max_ms": ms(max(values) if values else None)}


def median_range(values: list[float | None]) -> dict[str, Any] | None:
    """Median, min, max and count of the known values (None left out); None if none known."""
    known = [v for v in values if v is not None]
    if not known:
        return None
    return {"median": statistics.median(known), "min": min(known), "max": max(known),
            "n": len(known)}


def ratio(numerator: float | None, denominator: float | None) -> float | None:
    """``numerator / denominator``, or None when either is unknown or the denominator is 0."""
    if numerator is None or denominator is None or denominator == 0:
        return None
    return numerator / denominator


def share(total: int, parts: int, index: int) -> tuple[int, int]:
    """(first index, count) of part ``index`` when ``total`` items are split over ``parts``
    as evenly as possible, earlier parts taking the remainder: the shares cover
    ``range(total)`` exactly once, in order."""
    base, extra = divmod(total, parts)
    first = index * base + min(index, extra)
    return first, base + (1 if index < extra else 0)
