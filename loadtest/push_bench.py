#!/usr/bin/env python
"""Push benchmark: sends per second of one push worker process against a slow provider.

It starts an embedded PostgreSQL and Redis (or uses ``--database-url`` and
``--redis-url``), a fake FCM HTTP v1 endpoint in a process of its own that
answers every send after ``--latency`` seconds, and registers one FCM device per
user. Each run stores one publish to ``--jobs`` users and retires its outbox row
with its push jobs (one per recipient), as the publish hand-off does, then runs one
``tidings worker --burst`` process until every job is settled. The rate is the
number of pushes logged 'pushed' divided by the time from the first 'sending' row
to the last outcome (process start-up excluded); the worker's CPU seconds come
from its rusage (``PUSH_BENCH_PROFILE=<file>`` runs it under cProfile). Only
loopback addresses are used. Example::

    python loadtest/push_bench.py --latency 0.5 --jobs 20000 --runs 3
    python loadtest/push_bench.py --latency 0.02 --jobs 30000 --runs 3
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import resource
import secrets
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import asyncpg

PROJECT = "bench-project"


def service_account(token_url: str) -> dict:
    from cryptography.hazmat.primitives import serialization
    from cryptography.hazmat.primitives.asymmetric import rsa

    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    pem = key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                            serialization.NoEncryption()).decode()
    return {"type": "service_account", "project_id": PROJECT, "private_key_id": "k1",
            "private_key": pem, "client_email": f"push@{PROJECT}.example.com",
            "token_uri": token_url}


class _FakeFCM(asyncio.Protocol):
    """One HTTP/1.1 keep-alive connection of the fake FCM (lean, so the worker gets the CPU):
    POST /token gets an access token; a send with a ``token`` gets 200 after the latency."""

    latency = 0.5

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = transport
        self.buf = b""

    def data_received(self, data: bytes) -> None:
        self.buf += data
        while True:
            head_end = self.buf.find(b"\r\n\r\n")
            if head_end < 0:
                return
            head = self.buf[:head_end + 2].lower()  # each header line ends in CRLF
            at = head.find(b"content-length:")
            length = int(head[at + 15:head.find(b"\r\n", at)]) if at >= 0 else 0
            end = head_end + 4 + length
            if len(self.buf) < end:
                return
            body, path = self.buf[head_end + 4:end], head.split(b" ", 2)[1]
            self.buf = self.buf[end:]
            if path == b"/token":
                self._answer(200, b'{"access_token": "bench", "expires_in": 3600}')
            elif b'"token"' not in body:
                self._answer(400, b'{"error": {"status": "INVALID_ARGUMENT"}}')
            else:
                asyncio.get_running_loop().call_later(
                    self.latency, self._answer, 200, b'{"name": "projects/p/messages/1"}')

    def _answer(self, status: int, body: bytes) -> None:
        if not self.transport.is_closing():
            self.transport.write(b"HTTP/1.1 %d OK\r\nContent-Type: application/json\r\n"
                                 b"Content-Length: %d\r\n\r\n%s" % (status, len(body), body))


def serve_fake(port: int, latency: float) -> None:
    """Run the fake FCM on 127.0.0.1:``port`` until killed."""
    try:
        import uvloop
        uvloop.install()
    except ImportError:
        pass
    _FakeFCM.latency = latency

    async def serve() -> None:
        loop = asyncio.get_running_loop()
        server = await loop.create_server(_FakeFCM, "127.0.0.1", port, backlog=4096)
        await server.serve_forever()

    asyncio.run(serve())


def free_port() -> int:
    import socket
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


async def prepare(db_url: str, users: list[str]) -> None:
    from tidings.store import migrate

    conn = await asyncpg.connect(db_url)
    try:
        await migrate.apply(conn)
        await conn.execute(
            "INSERT INTO tidings_devices (user_id, platform, token)"
            " SELECT u, 'fcm', 'tok-' || u FROM unnest($1::text[]) AS u", users)
    finally:
        await conn.close()


async def publish(db_url: str, users: list[str]) -> list[str]:
    import uuid

    from tidings.store import db, outbox, push_jobs
    from tidings.store import publish as store

    pool = await db.create_pool(db_url, min_size=1, max_size=1)
    try:
        push = {"when": "always", "badge": 1}
        draft = store.Draft(users, [uuid.uuid4() for _ in users],
                            {"message": "bench push", "title": "Bench"}, push)
        async with pool.acquire() as conn, conn.transaction():
            [stored] = await store.publish(conn, store.prepare([draft]))
            await outbox.retire(conn, {stored.outbox_id: [
                push_jobs.OwedPush(push, [s.id for s in stored.rows])]})
        return [str(s.uid) for s in stored.rows]
    finally:
        await pool.close()


async def measure(db_url: str, uids: list[str]) -> dict:
    conn = await asyncpg.connect(db_url)
    try:
        row = await conn.fetchrow(
            "SELECT min(created_at) FILTER (WHERE outcome = 'sending') AS first,"
            " max(created_at) FILTER (WHERE outcome <> 'sending') AS last,"
            " count(*) FILTER (WHERE outcome = 'pushed') AS pushed,"
            " count(*) FILTER (WHERE outcome NOT IN ('sending', 'pushed')) AS other"
            " FROM tidings_deliveries WHERE notification_uid = ANY($1::uuid[])", uids)
        left = await conn.fetchval("SELECT count(*) FROM tidings_push_jobs")
        span = await conn.fetchrow(
            "SELECT percentile_cont(0.5) WITHIN GROUP (ORDER BY s) AS p50,"
            " percentile_cont(0.9) WITHIN GROUP (ORDER BY s) AS p90 FROM ("
            " SELECT extract(epoch FROM max(created_at) - min(created_at)) * 1000 AS s"
            " FROM tidings_deliveries WHERE notification_uid = ANY($1::uuid[])"
            " GROUP BY notification_uid, device_id) t", uids)
        other = await conn.fetchval(
            "SELECT outcome || ': ' || coalesce(detail, '') FROM tidings_deliveries"
            " WHERE notification_uid = ANY($1::uuid[]) AND outcome NOT IN ('sending', 'pushed')"
            " LIMIT 1", uids)
    finally:
        await conn.close()
    seconds = (row["last"] - row["first"]).total_seconds()
    return {"pushed": row["pushed"], "other_outcomes": row["other"], "other_example": other,
            "jobs_left": left, "sending_to_outcome_ms": {
                "p50": round(span["p50"]), "p90": round(span["p90"])},
            "seconds": round(seconds, 3), "sends_per_s": round(row["pushed"] / seconds, 1)}


def run_worker(env: dict[str, str]) -> float:
    """Run one ``tidings worker --burst``; returns its CPU seconds."""
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    profile = ["-m", "cProfile", "-o", env["PUSH_BENCH_PROFILE"]] if env.get(
        "PUSH_BENCH_PROFILE") else []
    subprocess.run([sys.executable, *profile, "-m", "tidings", "worker", "--burst"], env=env,
                   check=True, stdout=subprocess.DEVNULL)
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    return (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--latency", type=float, default=0.5, help="seconds the fake takes per send")
    p.add_argument("--jobs", type=int, default=20_000, help="pushes per run")
    p.add_argument("--runs", type=int, default=3)
    p.add_argument("--connections", type=int, default=1000, help="FCM app max_connections")
    p.add_argument("--database-url")
    p.add_argument("--redis-url")
    p.add_argument("--serve-fake", nargs=2, metavar=("PORT", "LATENCY"), help=argparse.SUPPRESS)
    args = p.parse_args()
    if args.serve_fake:
        serve_fake(int(args.serve_fake[0]), float(args.serve_fake[1]))
        return 0

    from tidings.embedded import Embedded

    with tempfile.TemporaryDirectory(prefix="tidings-push-bench-") as tmp:
        embedded = None
        db_url, redis_url = args.database_url, args.redis_url
        if not (db_url and redis_url):
            embedded = Embedded(Path(tmp), postgres=not db_url, redis=not redis_url).start()
            db_url = db_url or embedded.database_url
            redis_url = redis_url or embedded.redis_url
        port = free_port()
        fake = subprocess.Popen([sys.executable, __file__, "--serve-fake", str(port),
                                 str(args.latency)])
        try:
            return asyncio.run(bench(args, db_url, redis_url, port))
        finally:
            fake.terminate()
            fake.wait()
            if embedded is not None:
                embedded.stop()


async def bench(args: argparse.Namespace, db_url: str, redis_url: str, port: int) -> int:
    base = f"http://127.0.0.1:{port}"
    for _ in range(100):  # the fake is up
        try:
            _r, w = await asyncio.open_connection("127.0.0.1", port)
            w.close()
            break
        except OSError:
            await asyncio.sleep(0.1)
    app = {"platform": "fcm", "kind": "fcm", "service_account": service_account(f"{base}/token"),
           "api_url": base, "max_connections": args.connections}
    env = {**os.environ, "TIDINGS_DATABASE_URL": db_url, "TIDINGS_REDIS_URL": redis_url,
           "TIDINGS_PUSH_CONFIG": json.dumps([app]), "TIDINGS_LOG_LEVEL": "WARNING",
           "TIDINGS_PUSH_DEVICE_PER_MINUTE": str(args.runs + 10)}
    users = [f"bench-{secrets.token_hex(6)}" for _ in range(args.jobs)]
    await prepare(db_url, users)
    results = []
    for i in range(args.runs):
        uids = await publish(db_url, users)
        started = time.monotonic()
        cpu = await asyncio.to_thread(run_worker, env)
        result = await measure(db_url, uids) | {
            "wall_s": round(time.monotonic() - started, 2), "worker_cpu_s": round(cpu, 2)}
        results.append(result)
        print(f"run {i + 1}: {json.dumps(result)}", flush=True)
    rates = [r["sends_per_s"] for r in results]
    print(json.dumps({"latency_s": args.latency, "jobs": args.jobs,
                      "connections": args.connections, "median_sends_per_s":
                      statistics.median(rates), "worst_sends_per_s": min(rates)}))
    ok = all(r["pushed"] == args.jobs and r["jobs_left"] == 0 for r in results)
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
