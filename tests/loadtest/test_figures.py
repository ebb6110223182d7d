"""The benchmark's pure rules: percentiles, medians with ranges, shares of sockets over driver
processes, the driver-bound mark, and the sittings table built from reports."""

from __future__ import annotations

from hypothesis import assume, given
from hypothesis import strategies as st
from loadtest.bench.procs import driver_figures, merge_driver
from loadtest.bench.sockets import merge_checks
from loadtest.bench.stats import median_range, pct, ratio, share
from loadtest.bench.summary import cell_text, cells, fmt, measures, per_sitting, table

finite = st.floats(min_value=-1e9, max_value=1e9, allow_nan=False)


@given(st.integers(0, 100_000), st.integers(1, 64))
def test_shares_cover_every_socket_once_in_order(total, parts):
    got = []
    for i in range(parts):
        first, count = share(total, parts, i)
        assert first == len(got)
        got += range(first, first + count)
    assert got == list(range(total))
    counts = [share(total, parts, i)[1] for i in range(parts)]
    assert max(counts) - min(counts) <= 1


@given(st.lists(finite, min_size=1), st.floats(0, 100))
def test_a_percentile_is_one_of_the_values_and_monotonic(values, q):
    p = pct(values, q)
    assert p in values
    assert pct(values, 0) <= p <= pct(values, 100)
    assert pct(values, 0) == min(values) and pct(values, 100) == max(values)


def test_no_values_have_no_percentile():
    assert pct([], 50) is None


@given(st.lists(st.one_of(st.none(), finite)))
def test_median_range_ignores_unknowns_and_lies_within_the_range(values):
    known = [v for v in values if v is not None]
    s = median_range(values)
    if not known:
        assert s is None
        return
    assert s["n"] == len(known)
    assert s["min"] == min(known) and s["max"] == max(known)
    assert s["min"] <= s["median"] <= s["max"]


@given(st.one_of(st.none(), finite), st.one_of(st.none(), finite))
def test_ratio_is_unknown_when_either_side_is(a, b):
    r = ratio(a, b)
    if a is None or b is None or b == 0:
        assert r is None
    else:
        assert r == a / b


def _sample(at, **cpu):
    return {"at": at, "cpu": {int(k[1:]): v for k, v in cpu.items()}}


@given(st.floats(0, 4), st.floats(0, 4), st.floats(0.05, 10), st.floats(0.1, 1.5))
def test_driver_bound_when_its_processes_together_pass_the_threshold(a, b, wall, threshold):
    before = _sample(100.0, p1=1.0, p2=2.0)
    after = _sample(100.0 + wall, p1=1.0 + a * wall, p2=2.0 + b * wall)
    f = driver_figures(before, after, threshold)
    assume(abs(a + b - threshold) > 1e-6)  # exactly at the threshold is float rounding's call
    assert f["bound"] == (a + b > threshold)
    assert abs(f["util"] - (a + b)) < 0.01
    assert abs(f["busiest"] - max(a, b)) < 0.01
    assert f["procs"] == 2


def test_merged_windows_weigh_by_their_length():
    short_busy = driver_figures(_sample(0, p1=0), _sample(0.1, p1=0.1))  # 1 core for 0.1 s
    long_idle = driver_figures(_sample(0, p1=0), _sample(1.9, p1=0.0))
    assert short_busy["bound"] and not long_idle["bound"]
    merged = merge_driver([short_busy, long_idle])
    assert merged["util"] == 0.05 and not merged["bound"] and merged["windows"] == 2
    assert merge_driver([]) is None


def test_checks_of_several_processes_add_up():
    a = {"expected": 3, "received": 3, "missed": 0, "unexpected": 0, "duplicates": 0,
         "order_ok": True, "gaps": 0, "resets": 0}
    b = dict(a, missed=2, order_ok=False, gaps=1)
    merged = merge_checks([a, b])
    assert merged["expected"] == 6 and merged["missed"] == 2 and merged["gaps"] == 1
    assert merged["order_ok"] is False


SIZES = {"rate": 1000, "subscribers": 1000, "recipients": 10_000, "idle_sockets": [5000, 19900],
         "per_request": 100}
OK = {"missed": 0, "duplicates": 0, "order_ok": True}


def _latency(cpu, bound=False, correct=OK):
    return {"scenarios": {"latency": {"server_cpu_ms_per_delivery": cpu, "p50_ms": 1.0,
                                      "p99_ms": 2.0, "correct": correct,
                                      "driver": {"bound": bound}}}}


def _runs(tidings, nchan):
    out = []
    for target, reports in (("tidings", tidings), ("nchan", nchan)):
        for sitting, report in enumerate(reports, 1):
            out.append({"sitting": sitting, "target": target, "run": "latency",
                        "report": report})
    return out


def test_a_cell_counts_driver_bound_incorrect_and_failed_sittings():
    cpu = measures(SIZES)[0]
    runs = _runs([_latency(0.6), _latency(0.8, bound=True), None],
                 [_latency(0.05, correct=dict(OK, missed=1)), _latency(0.04), _latency(0.06)])
    t = cells(cpu, "tidings", runs, 3)
    assert t.values == [0.6, 0.8, None]
    assert (t.driver_bound, t.incorrect, t.failed) == (1, 0, 1)
    assert t.marks == [[], ["driver-bound"], ["failed"]]
    assert cell_text(t) == "0.700 (0.600\u20130.800)"
    n = cells(cpu, "nchan", runs, 3)
    assert n.incorrect == 1 and n.summary["median"] == 0.05
    text = table([cpu], runs, 3)
    row = next(line for line in text.splitlines() if line.startswith("| node CPU"))
    assert "14.0\u00d7" in row  # 0.7 / 0.05
    assert "Tidings: driver-bound in 1 of 3" in row
    assert "Tidings: no figure (run failed) in 1 of 3" in row
    assert "nchan: INCORRECT" in row
    sittings = per_sitting([cpu], runs, 3)
    assert "0.800 (driver-bound)" in sittings and "- (failed)" in sittings


def test_memory_is_never_marked_driver_bound_and_tidings_only_rows_have_no_ratio():
    ms = {m.key: m for m in measures(SIZES)}
    idle = {"scenarios": {"idle": {"kib_per_socket": 15.9, "correct": OK,
                                   "driver": {"bound": True}}}}
    runs = [{"sitting": 1, "target": t, "run": "idle-5000", "report": idle}
            for t in ("tidings", "nchan")]
    assert cells(ms["mem_small"], "tidings", runs, 1).driver_bound == 0
    assert cells(ms["connects"], "tidings", runs, 1).driver_bound == 1
    batch_row = next(line for line in table([ms["batch"]], [], 1).splitlines()
                     if "batch endpoint" in line)
    assert "| n/a | - |" in batch_row


def test_a_ladder_that_never_broke_is_shown_as_a_lower_bound():
    plain = next(m for m in measures(SIZES) if m.key == "plain")
    report = {"scenarios": {"throughput": {"sustained": {"offered_publishes_per_s": 6000},
                                           "ceiling_reached": False, "correct": OK,
                                           "driver": {"bound": False}}}}
    c = cells(plain, "tidings", [{"sitting": 1, "target": "tidings", "run": "plain",
                                  "report": report}], 1)
    assert c.lower_bound == 1 and cell_text(c) == "\u2265 6,000"


@given(finite)
def test_fmt_keeps_about_three_figures(v):
    text = fmt(v)
    assert float(text.replace(",", "")) == float(text.replace(",", ""))  # parses
    assert abs(float(text.replace(",", "")) - v) <= max(0.5, abs(v) * 0.01)
