"""Smoke runs of the load tools: tiny sizes, correctness only (no timed assertion).

``python -m loadtest.bench`` starts its own server on the test database and Redis
(or nginx + nchan) and must report nothing missed, nothing twice and order kept in
every scenario, with the driver's own CPU sampled in each; split over holder
processes, the broadcast's sockets must all hear it. The sittings runner must refuse
a busy machine, and otherwise run its plan on a fresh database per Tidings run and
write the table. Locust runs its traffic mix for a few seconds against a node and
must have made requests with no failure.
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
from urllib.parse import urlsplit, urlunsplit

import asyncpg
import pytest
import redis.asyncio as aioredis

from helpers import API_KEY, JWT_SECRET, serve_node, with_database

ROOT = Path(__file__).resolve().parents[2]
LOCUSTFILE = ROOT / "loadtest" / "locustfile.py"
NGINX = Path("/usr/sbin/nginx")  # Debian's, with libnginx-mod-nchan
BENCH = (sys.executable, "-m", "loadtest.bench")
SITTINGS = (sys.executable, "-m", "loadtest.bench.sittings")
HAS_NGINX = NGINX.exists()
needs_nginx = pytest.mark.skipif(
    not HAS_NGINX, reason="nginx is not installed (apt-get install nginx libnginx-mod-nchan)")

pytestmark = pytest.mark.timeout(300)


async def _run(*argv: str, env: dict[str, str] | None = None) -> tuple[int, str]:
    """Run a command in a thread, so this loop (and a node it serves) keeps running."""
    done = await asyncio.to_thread(
        subprocess.run, argv, cwd=ROOT, env=env, stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT, timeout=280, check=False)
    return done.returncode, done.stdout.decode(errors="replace")


def _correct_everywhere(scenarios):
    for name, result in scenarios.items():
        correct = result["correct"]
        assert correct["missed"] == 0, (name, correct)
        assert correct["duplicates"] == 0, (name, correct)
        assert correct["order_ok"], (name, correct)


def _driver_sampled(scenarios):
    for name, result in scenarios.items():
        driver = result["driver"]
        assert driver is not None, name
        assert driver["cpu_s"] >= 0 and driver["wall_s"] > 0, (name, driver)
        assert driver["bound"] == (driver["util"] > driver["threshold"]), (name, driver)


async def test_bench_scenarios_are_correct_at_tiny_sizes(settings, tmp_path):
    out = tmp_path / "smoke"
    code, log = await _run(
        *BENCH, "--database-url", settings.database_url, "--redis-url", settings.redis_url,
        "idle", "fanout", "latency", "recovery", "throughput",
        "--sockets", "20", "--hold", "0.5", "--recipients", "30", "--repeat", "2",
        "--subscribers", "20", "--rate", "40", "--seconds", "1", "--missed", "20",
        "--batch", "5", "--steps", "100,200", "--max-p99-ms", "100000",
        "--connect-concurrency", "10", "--out", str(out))
    assert code == 0, log[-3000:]
    report = json.loads(out.with_suffix(".json").read_text())
    scenarios = report["scenarios"]
    assert set(scenarios) == {"idle", "fanout", "latency", "recovery", "throughput"}
    _correct_everywhere(scenarios)
    _driver_sampled(scenarios)
    assert scenarios["idle"]["connected"] == 20
    assert scenarios["idle"]["open_after_hold"] == 20
    assert all(r["delivered"] == 30 for r in scenarios["fanout"]["repeats"])
    assert all(r["first_ms"] <= r["last_ms"] for r in scenarios["fanout"]["repeats"])
    assert all(r["replayed"] == 20 for r in scenarios["recovery"]["repeats"])
    assert scenarios["latency"]["delivered"] == 40
    assert scenarios["latency"]["stack_cpu_ms_per_delivery"] >= (
        scenarios["latency"]["server_cpu_ms_per_delivery"]), "PostgreSQL and Redis add on"
    assert scenarios["throughput"]["steps"][0]["delivered"] == 100
    assert report["machine"]["commit"] and "driver_bound" in report
    md = out.with_suffix(".md").read_text()
    assert "| latency |" in md and "driver CPU in the measured windows" in md


async def test_bench_batch_endpoint_ladder(settings, tmp_path):
    out = tmp_path / "batch"
    code, log = await _run(
        *BENCH, "--database-url", settings.database_url, "--redis-url", settings.redis_url,
        "throughput", "--endpoint", "batch", "--per-request", "10", "--batch", "1",
        "--subscribers", "15", "--steps", "40,80", "--seconds", "1", "--max-p99-ms", "100000",
        "--connect-concurrency", "10", "--out", str(out))
    assert code == 0, log[-3000:]
    tp = json.loads(out.with_suffix(".json").read_text())["scenarios"]["throughput"]
    _correct_everywhere({"throughput": tp})
    assert tp["endpoint"] == "batch" and tp["per_request"] == 10
    assert [s["delivered"] for s in tp["steps"]] == [40, 80]
    assert tp["errors"] == 0 and not tp["ceiling_reached"]


async def test_bench_sockets_split_over_driver_processes(settings, tmp_path):
    """idle and fanout with their sockets over three holder processes (two node processes):
    every socket connects and hears every broadcast, and the holders' CPU counts."""
    out = tmp_path / "split"
    code, log = await _run(
        *BENCH, "--database-url", settings.database_url, "--redis-url", settings.redis_url,
        "idle", "fanout", "--workers", "2", "--driver-procs", "3", "--sockets", "31",
        "--hold", "0.5", "--recipients", "40", "--repeat", "2",
        "--connect-concurrency", "9", "--out", str(out))
    assert code == 0, log[-3000:]
    scenarios = json.loads(out.with_suffix(".json").read_text())["scenarios"]
    _correct_everywhere(scenarios)
    _driver_sampled(scenarios)
    idle, fan = scenarios["idle"], scenarios["fanout"]
    assert idle["driver_procs"] == 3 and idle["sources"] == 3
    assert idle["connected"] == idle["open_after_hold"] == 31, idle
    assert idle["driver"]["procs"] == 4, "this process and its three holders"
    assert fan["connected"] == 40 and fan["correct"]["expected"] == 80
    assert all(r["delivered"] == 40 for r in fan["repeats"]), fan["repeats"]
    assert all(0 <= r["first_ms"] <= r["last_ms"] for r in fan["repeats"]), fan["repeats"]


@needs_nginx
async def test_bench_runs_the_same_scenarios_against_nchan(tmp_path):
    """nginx + nchan through the same driver code: correct, and stopped at the end."""
    out = tmp_path / "nchan"
    code, log = await _run(
        *BENCH, "--target", "nchan", "idle", "fanout", "latency", "throughput",
        "--sockets", "20", "--hold", "0.5", "--recipients", "300", "--repeat", "2",
        "--driver-procs", "2", "--subscribers", "20", "--rate", "40", "--seconds", "1",
        "--batch", "1", "--steps", "50,100", "--max-p99-ms", "100000",
        "--connect-concurrency", "10", "--out", str(out),
        env=dict(os.environ, TMPDIR=str(tmp_path)))  # nginx's prefix goes there
    assert code == 0, log[-3000:]
    report = json.loads(out.with_suffix(".json").read_text())
    assert report["target"] == "nchan"
    scenarios = report["scenarios"]
    _correct_everywhere(scenarios)
    _driver_sampled(scenarios)
    assert scenarios["idle"]["open_after_hold"] == 20
    assert all(r["delivered"] == 300 for r in scenarios["fanout"]["repeats"]), "past 255"
    assert scenarios["latency"]["delivered"] == 40
    assert scenarios["latency"]["server_cpu_s"] is not None, "the worker's CPU is sampled"
    assert [s["delivered"] for s in scenarios["throughput"]["steps"]] == [50, 100]
    nginx = subprocess.run(["pgrep", "-f", str(tmp_path)], capture_output=True, check=False)
    assert not nginx.stdout, "nginx is stopped"
    assert not list(tmp_path.glob("tidings-nchan-*")), "its prefix is removed"


async def test_sittings_refuse_a_busy_machine(tmp_path):
    out = tmp_path / "refused"
    code, log = await _run(*SITTINGS, "--sittings", "1", "--targets", "tidings",
                           "--max-load", "-1", "--quiet-seconds", "0.2", "--wait-quiet", "0",
                           "--out", str(out))
    assert code == 2, log[-3000:]
    assert "refusing to start" in log and "load average" in log
    assert not list(out.glob("report.md"))


def _redis_db(url: str, db: int) -> str:
    return urlunsplit(urlsplit(url)._replace(path=f"/{db}"))


async def test_sittings_run_the_plan_on_fresh_databases_and_write_the_table(
        settings, database_url, tmp_path):
    """Two tiny sittings on a database of their own: each Tidings run starts on it dropped and
    created (a table made before is gone, the node migrated it) and on a flushed Redis db;
    the report has the medians with ranges, the ratio column, each sitting, the machine."""
    name = f"tidings_sittings_{os.getpid()}"
    db_url = with_database(database_url, name)
    redis_url = _redis_db(settings.redis_url, 9)
    admin = await asyncpg.connect(database_url)
    await admin.execute(f'CREATE DATABASE "{name}"')
    conn = await asyncpg.connect(db_url)
    await conn.execute("CREATE TABLE left_behind (x int)")
    await conn.close()
    r = aioredis.Redis.from_url(redis_url)
    await r.set("left-behind", "1")
    targets = "tidings,nchan" if HAS_NGINX else "tidings"
    out = tmp_path / "sittings"
    try:
        code, log = await _run(
            *SITTINGS, "--sittings", "2", "--allow-busy", "--quiet-seconds", "0.2",
            "--database-url", db_url, "--redis-url", redis_url, "--targets", targets,
            "--runs", "latency,fanout", "--subscribers", "10", "--rate", "20", "--seconds", "1",
            "--recipients", "30", "--repeat", "2", "--connect-concurrency", "10",
            "--out", str(out), env=dict(os.environ, TMPDIR=str(tmp_path)))
        assert code == 0, log[-3000:]
        conn = await asyncpg.connect(db_url)
        try:
            tables = {row[0] for row in await conn.fetch(
                "SELECT tablename FROM pg_tables WHERE schemaname = 'public'")}
        finally:
            await conn.close()
        assert "left_behind" not in tables and "tidings_notifications" in tables
        assert await r.get("left-behind") is None
    finally:
        await r.aclose()
        await admin.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        await admin.close()
    md = (out / "report.md").read_text()
    summary = json.loads((out / "report.json").read_text())
    runs = summary["runs"]
    assert {(x["sitting"], x["target"], x["run"]) for x in runs} == {
        (s, t, n) for s in (1, 2) for t in targets.split(",") for n in ("latency", "fanout")}
    assert all(x["exit"] == 0 for x in runs), runs
    assert summary["facts"]["commit"] and summary["facts"]["postgresql"]
    assert len(summary["quiet"]) == 2
    row = next(line for line in md.splitlines() if line.startswith("| latency p50"))
    assert "\u2013" in row, "a median with its range"
    if HAS_NGINX:
        assert "\u00d7 |" in row, "the ratio column"
    assert "## Each sitting" in md and "| sitting 1 | sitting 2 |" in md
    assert "django-notifications-websocket" in md
    for x in runs:
        report = json.loads((out / x["json"]).read_text())
        _correct_everywhere(report["scenarios"])


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
