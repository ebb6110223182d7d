#!/usr/bin/env python
"""What one large publish costs the push queue and the node: the amplification check.

Each run starts a fresh ``tidings serve`` (push workers off, so the owed jobs stay
queued) on the PostgreSQL and Redis given, warms it with a 100-recipient publish,
then sends one valid publish to R offline recipients with ``data`` close to the
16 KiB content limit, and reports:

- the request body's size;
- what the push queue grew by: the on-disk size of ``tidings_push_jobs`` and
  ``tidings_push_options`` (the queue lives in PostgreSQL) and Redis
  ``used_memory`` (which should not grow with pushes at all);
- the node's peak RSS above its RSS before the publish (sampled every 5 ms).

Usage (loopback only)::

    python loadtest/amplification.py \\
        --database-url postgresql://postgres@127.0.0.1:5432/tidings_amp \\
        --redis-url redis://127.0.0.1:6379/7 --recipients 10000 --runs 3
"""

from __future__ import annotations

import argparse
import asyncio
import os
import secrets
import socket
import statistics
import subprocess
import sys
import tempfile
import time

import aiohttp
import asyncpg
import orjson
import psutil
import redis.asyncio as aioredis

QUEUE_SIZE = ("SELECT pg_total_relation_size('tidings_push_jobs')"
              " + pg_total_relation_size('tidings_push_options')")


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def body(recipients: int, run: int, data_bytes: int) -> bytes:
    """One publish to ``recipients`` new users with ``data_bytes`` of data."""
    data = {"blob": "x" * data_bytes}
    return orjson.dumps({
        "recipients": [f"amp{run}-{i}" for i in range(recipients)],
        "message": "a large publish", "data": data,
        "push": {"when": "offline", "extra": {"k": "v" * 256}},
    })


async def sample_peak(pid: int, stop: asyncio.Event) -> int:
    proc, peak = psutil.Process(pid), 0
    while not stop.is_set():
        peak = max(peak, proc.memory_info().rss)
        await asyncio.sleep(0.005)
    return max(peak, proc.memory_info().rss)


async def one_run(url: str, key: str, pid: int, db: str, redis_url: str, recipients: int,
                  run: int, data_bytes: int) -> dict[str, float]:
    payload = body(recipients, run, data_bytes)
    conn = await asyncpg.connect(db)
    r = aioredis.Redis.from_url(redis_url)
    try:
        jobs0 = await conn.fetchval("SELECT count(*) FROM tidings_push_jobs")
        queue0 = await conn.fetchval(QUEUE_SIZE)
        redis0 = (await r.info("memory"))["used_memory"]
        rss0 = psutil.Process(pid).memory_info().rss
        stop = asyncio.Event()
        sampler = asyncio.create_task(sample_peak(pid, stop))
        t0 = time.monotonic()
        async with aiohttp.ClientSession() as http, http.post(
                f"{url}/api/v1/notifications", data=payload,
                headers={"Authorization": f"Bearer {key}",
                         "Content-Type": "application/json"}) as resp:
            assert resp.status == 201, (resp.status, await resp.text())
        elapsed = time.monotonic() - t0
        await asyncio.sleep(1.0)  # the outbox retire writes the jobs after the answer
        stop.set()
        peak = await sampler
        jobs = await conn.fetchval("SELECT count(*) FROM tidings_push_jobs") - jobs0
        queue1 = await conn.fetchval(QUEUE_SIZE)
        redis1 = (await r.info("memory"))["used_memory"]
    finally:
        await conn.close()
        await r.aclose()
    mib = 1024 * 1024
    return {"body_kib": len(payload) / 1024, "seconds": elapsed, "jobs": jobs,
            "queue_mib": (queue1 - queue0) / mib, "redis_mib": (redis1 - redis0) / mib,
            "peak_rss_mib": (peak - rss0) / mib}


async def ready(url: str, proc: asyncio.subprocess.Process, within: float = 60.0) -> None:
    """Return once the node answers ``/readyz`` 200; raise if it exits or takes too long."""
    deadline = time.monotonic() + within
    async with aiohttp.ClientSession() as http:
        while time.monotonic() < deadline:
            if proc.returncode is not None:
                raise SystemExit(f"tidings serve exited with {proc.returncode}")
            try:
                async with http.get(f"{url}/readyz") as resp:
                    if resp.status == 200:
                        return
            except aiohttp.ClientError:
                pass
            await asyncio.sleep(0.1)
    raise SystemExit(f"tidings serve was not ready within {within} s")


async def fresh_node_run(a: argparse.Namespace, run: int) -> dict[str, float]:
    """One measured publish on a node started for it (so its peak RSS is this publish's)."""
    port, key = free_port(), secrets.token_hex(16)
    env = dict(os.environ, TIDINGS_HOST="127.0.0.1", TIDINGS_PORT=str(port),
               TIDINGS_DATABASE_URL=a.database_url, TIDINGS_REDIS_URL=a.redis_url,
               TIDINGS_JWT_SECRET=secrets.token_hex(32), TIDINGS_API_KEYS=key,
               TIDINGS_PUSH_WORKERS="false", TIDINGS_RATE_LIMIT_PRODUCER="0",
               TIDINGS_LOG_LEVEL="WARNING", TIDINGS_DEV="false",
               TIDINGS_DATA_DIR=tempfile.mkdtemp(prefix="tidings-amp-"))
    proc = await asyncio.create_subprocess_exec(sys.executable, "-m", "tidings", "serve",
                                                env=env, stdout=subprocess.DEVNULL)
    url = f"http://127.0.0.1:{port}"
    try:
        await ready(url, proc)
        await one_run(url, key, proc.pid, a.database_url, a.redis_url, 100, -run - 1, 10)
        return await one_run(url, key, proc.pid, a.database_url, a.redis_url, a.recipients, run,
                             a.data_bytes)
    finally:
        proc.terminate()
        await proc.wait()


async def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--database-url", required=True)
    p.add_argument("--redis-url", required=True)
    p.add_argument("--recipients", type=int, default=10_000)
    p.add_argument("--runs", type=int, default=3)
    p.add_argument("--data-bytes", type=int, default=15 * 1024,
                   help="size of the publish's data (the content limit is 16 KiB)")
    a = p.parse_args()
    results = [await fresh_node_run(a, run) for run in range(a.runs)]
    print(f"one publish to {a.recipients} offline recipients, {results[0]['body_kib']:.0f} KiB"
          f" body; {a.runs} runs (median, worst):")
    for name in ("seconds", "jobs", "queue_mib", "redis_mib", "peak_rss_mib"):
        values = [r[name] for r in results]
        print(f"  {name:13} {statistics.median(values):10.2f} {max(values):10.2f}")


if __name__ == "__main__":
    asyncio.run(main())
