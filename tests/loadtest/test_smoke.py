"""Smoke runs of the load tools: tiny sizes, correctness only (no timed assertion).

``loadtest/bench.py`` starts its own server on the test database and Redis and
must report nothing missed, nothing twice and order kept in every scenario;
locust runs its traffic mix for a few seconds against a node and must have
made requests with no failure.
"""

from __future__ import annotations

import asyncio
import csv
import importlib.util
import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from helpers import API_KEY, JWT_SECRET, serve_node

ROOT = Path(__file__).resolve().parents[2]
BENCH = ROOT / "loadtest" / "bench.py"
LOCUSTFILE = ROOT / "loadtest" / "locustfile.py"
NGINX = Path("/usr/sbin/nginx")  # Debian's, with libnginx-mod-nchan

pytestmark = pytest.mark.timeout(300)


async def _run(*argv: str, env: dict[str, str] | None = None) -> tuple[int, str]:
    """Run a command in a thread, so this loop (and a node it serves) keeps running."""
    done = await asyncio.to_thread(
        subprocess.run, argv, cwd=ROOT, env=env, stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT, timeout=240, check=False)
    return done.returncode, done.stdout.decode(errors="replace")


async def test_bench_scenarios_are_correct_at_tiny_sizes(settings, tmp_path):
    out = tmp_path / "smoke"
    code, log = await _run(
        sys.executable, str(BENCH),
        "--database-url", settings.database_url, "--redis-url", settings.redis_url,
        "idle", "fanout", "latency", "recovery", "throughput",
        "--sockets", "20", "--hold", "0.5", "--recipients", "30", "--repeat", "2",
        "--subscribers", "20", "--rate", "40", "--seconds", "1", "--missed", "20",
        "--batch", "5", "--steps", "100,200", "--max-p99-ms", "100000",
        "--connect-concurrency", "10", "--out", str(out))
    assert code == 0, log[-3000:]
    report = json.loads(out.with_suffix(".json").read_text())
    scenarios = report["scenarios"]
    assert set(scenarios) == {"idle", "fanout", "latency", "recovery", "throughput"}
    for name, result in scenarios.items():
        correct = result["correct"]
        assert correct["missed"] == 0, (name, correct)
        assert correct["duplicates"] == 0, (name, correct)
        assert correct["order_ok"], (name, correct)
    assert scenarios["idle"]["connected"] == 20
    assert scenarios["idle"]["open_after_hold"] == 20
    assert all(r["delivered"] == 30 for r in scenarios["fanout"]["repeats"])
    assert all(r["replayed"] == 20 for r in scenarios["recovery"]["repeats"])
    assert scenarios["latency"]["delivered"] == 40
    assert scenarios["throughput"]["steps"][0]["delivered"] == 100
    assert "| latency |" in out.with_suffix(".md").read_text()


async def test_bench_idle_split_over_driver_processes(settings, tmp_path):
    out = tmp_path / "split"
    code, log = await _run(
        sys.executable, str(BENCH),
        "--database-url", settings.database_url, "--redis-url", settings.redis_url,
        "idle", "--workers", "2", "--driver-procs", "3", "--sockets", "31", "--hold", "0.5",
        "--connect-concurrency", "9", "--out", str(out))
    assert code == 0, log[-3000:]
    idle = json.loads(out.with_suffix(".json").read_text())["scenarios"]["idle"]
    assert idle["driver_procs"] == 3 and idle["sources"] == 3
    assert idle["connected"] == idle["open_after_hold"] == 31, idle


@pytest.mark.skipif(not NGINX.exists(),
                    reason="nginx is not installed (apt-get install nginx libnginx-mod-nchan)")
async def test_bench_runs_the_same_scenarios_against_nchan(tmp_path):
    """nginx + nchan through the same driver code: correct, and stopped at the end."""
    out = tmp_path / "nchan"
    code, log = await _run(
        sys.executable, str(BENCH), "--target", "nchan", "idle", "fanout", "latency",
        "--sockets", "20", "--hold", "0.5", "--recipients", "300", "--repeat", "2",
        "--subscribers", "20", "--rate", "40", "--seconds", "1",
        "--connect-concurrency", "10", "--out", str(out),
        env=dict(os.environ, TMPDIR=str(tmp_path)))  # nginx's prefix goes there
    assert code == 0, log[-3000:]
    report = json.loads(out.with_suffix(".json").read_text())
    assert report["target"] == "nchan"
    scenarios = report["scenarios"]
    for name, result in scenarios.items():
        correct = result["correct"]
        assert correct["missed"] == 0 and correct["duplicates"] == 0, (name, correct)
        assert correct["order_ok"], (name, correct)
    assert scenarios["idle"]["open_after_hold"] == 20
    assert all(r["delivered"] == 300 for r in scenarios["fanout"]["repeats"]), "past 255"
    assert scenarios["latency"]["delivered"] == 40
    assert scenarios["latency"]["server_cpu_s"] is not None, "the worker's CPU is sampled"
    nginx = subprocess.run(["pgrep", "-f", str(tmp_path)], capture_output=True, check=False)
    assert not nginx.stdout, "nginx is stopped"
    assert not list(tmp_path.glob("tidings-nchan-*")), "its prefix is removed"


async def test_locust_mix_runs_without_failures(settings, tmp_path):
    # find it, never import it here: importing locust monkey-patches this process with gevent
    if importlib.util.find_spec("locust") is None:
        pytest.skip("locust is not installed (pip install -e '.[loadtest]')")
    env = dict(os.environ, TIDINGS_JWT_SECRET=JWT_SECRET, TIDINGS_API_KEY=API_KEY,
               LOADTEST_USERS="4", LOADTEST_RECONNECT="1", LOADTEST_BATCH="3")
    async with serve_node(settings) as node:
        code, log = await _run(
            sys.executable, "-m", "locust", "-f", str(LOCUSTFILE), "--headless",
            "-u", "8", "-r", "8", "-t", "4s", "--host", node.url, "--only-summary",
            "--csv", str(tmp_path / "mix"), "--stop-timeout", "5", env=env)
    assert code == 0, log[-3000:]
    with open(tmp_path / "mix_stats.csv") as f:
        rows = {row["Name"]: row for row in csv.DictReader(f)}
    total = rows["Aggregated"]
    assert int(total["Request Count"]) > 0, rows
    assert int(total["Failure Count"]) == 0, rows
    assert int(rows["connect"]["Request Count"]) > 0, rows
    assert any(name.startswith("POST /api/v1/notifications") for name in rows), rows
