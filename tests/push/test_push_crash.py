"""The crash contract, Redis losing its data, leases, and large publishes.

A push worker SIGKILLed mid-run against the fake APNs and FCM (which record every
send): nothing is missing, only sends whose outcome was lost are repeated (each
with the notification uid as collapse id), and another worker takes over within
15 s. Redis flushed or down during a run loses no push.
"""

import asyncio
import json
import logging
import os
import sys
import time
from collections import Counter
from pathlib import Path

import pytest
import redis.asyncio as aioredis
from push_helpers import add_device, jobs_of, token_of

from tidings.bus.throttle import Throttle
from tidings.push.registry import Registry
from tidings.store import push_results
from tidings.workers.push import PushWorker, WorkerConfig

from fakes.fake_apns import Answer as ApnsAnswer
from fakes.fake_fcm import Answer as FcmAnswer
from helpers import eventually, new_user, store_publish

WORKER_PROC = Path(__file__).with_name("worker_proc.py")


@pytest.fixture
async def clean(pool):
    """No jobs of earlier tests: the workers here claim whatever is due."""
    await pool.execute("DELETE FROM tidings_push_jobs")
    await pool.execute("DELETE FROM tidings_push_options")


@pytest.fixture
def two_apps(apps):
    """APNs (token auth) and FCM, ten sends in flight each."""
    return [{**apps[0], "concurrency": 10}, {**apps[2], "concurrency": 10}]


async def phones(pool, users):
    """One APNs and one FCM device per user: {device id: (user, token)}."""
    out = {}
    for u in users:
        for platform in ("apns", "fcm"):
            dev = await add_device(pool, u, platform)
            out[dev] = (u, await token_of(pool, dev))
    return out


async def log_rows(pool, uids):
    return await pool.fetch(
        "SELECT notification_uid::text AS uid, device_id, outcome, attempt FROM tidings_deliveries"
        " WHERE notification_uid = ANY($1::uuid[]) ORDER BY id", uids)


def lost_sends(rows) -> set[tuple[str, int]]:
    """(uid, device) pairs with a 'sending' row and no outcome after it."""
    pending: Counter = Counter()
    for r in rows:
        key = (r["uid"], r["device_id"])
        pending[key] += 1 if r["outcome"] == "sending" else -1
    return {k for k, n in pending.items() if n > 0}


async def test_a_killed_worker_repeats_only_its_sends_in_flight(
        clean, pool, apns, fcm, two_apps, migrated):
    apns.default = ApnsAnswer(delay=0.2)
    fcm.default = FcmAnswer(delay=0.2)
    users = [new_user("crash") for _ in range(100)]
    devices = await phones(pool, users)
    uids = await store_publish(pool, users, {"when": "always", "badge": 1})
    uid_of = dict(zip(users, uids, strict=True))
    proc = await asyncio.create_subprocess_exec(
        sys.executable, str(WORKER_PROC), migrated, "doomed",
        env={**os.environ, "TIDINGS_PUSH_CONFIG": json.dumps(two_apps)})
    try:
        async def a_third_pushed():
            rows = await log_rows(pool, uids)
            return sum(r["outcome"] == "pushed" for r in rows) >= 60
        await eventually(a_third_pushed, within=60)
    finally:
        proc.kill()
        await proc.wait()
    killed_at = time.monotonic()
    lost = lost_sends(await log_rows(pool, uids))
    # in flight: ten sends per app at the providers, plus answers not yet committed
    assert 1 <= len(lost) <= 2 * 20

    registry = Registry.from_config(two_apps)
    heir = PushWorker(pool, registry, WorkerConfig(name="heir"))
    task = asyncio.create_task(heir.run())
    try:
        async def taken_over():
            return not await pool.fetchval(
                "SELECT count(*) FROM tidings_push_jobs WHERE leased_by = 'doomed'")
        await eventually(taken_over, within=30)
        assert time.monotonic() - killed_at <= 15

        async def all_settled():
            return await jobs_of(pool, uids) == []
        await eventually(all_settled, within=60)
    finally:
        heir.stop()
        await asyncio.wait_for(task, 30)
        await registry.close()

    rows = await log_rows(pool, uids)
    pushed = Counter((r["uid"], r["device_id"]) for r in rows if r["outcome"] == "pushed")
    expected = {(uid_of[u], dev) for dev, (u, _) in devices.items()}
    assert set(pushed) == expected and set(pushed.values()) == {1}  # nothing missing
    assert lost_sends(rows) == lost  # the attempts whose outcome was lost stay visible

    sends: Counter = Counter()
    for r in apns.requests:
        uid = r.payload["uid"]
        assert r.headers["apns-collapse-id"] == uid
        sends[uid, r.token] += 1
    for s in fcm.sent:
        m = s.body["message"]
        uid = m["data"]["uid"]
        assert m["android"]["collapse_key"] == uid == m["android"]["notification"]["tag"]
        assert m["apns"]["headers"]["apns-collapse-id"] == uid
        sends[uid, s.token] += 1
    by_token = {(uid_of[u], tok): dev for dev, (u, tok) in devices.items()}
    assert set(sends) == set(by_token)
    repeated = {by_token[k] for k, n in sends.items() if n > 1}
    assert max(sends.values()) <= 2
    assert {(uid, dev) for (uid, _tok), dev in by_token.items() if dev in repeated} <= lost


async def test_a_lease_is_renewed_while_a_send_is_in_flight(clean, pool, apns, apps, user):
    dev = await add_device(pool, user)
    apns.answer(await token_of(pool, dev), ApnsAnswer(delay=1.5))
    [uid] = await store_publish(pool, [user])
    registries = [Registry.from_config(apps) for _ in range(2)]
    slow = PushWorker(pool, registries[0], WorkerConfig(name="slow", lease=0.6, poll=0.1))
    other = PushWorker(pool, registries[1], WorkerConfig(name="other", lease=0.6, poll=0.1))
    try:
        first = asyncio.create_task(slow.run(burst=True))

        async def in_flight():
            return bool(apns.requests)
        await eventually(in_flight, within=10)
        second = asyncio.create_task(other.run())
        await first
        other.stop()
        await second
    finally:
        for r in registries:
            await r.close()
    assert len(apns.requests) == 1 and await jobs_of(pool, [uid]) == []


@pytest.mark.parametrize("redis_state", ["flushed", "down"])
async def test_redis_losing_its_data_loses_no_push(
        clean, pool, apns, apps, push_redis_url, redis_state, caplog):
    apns.default = ApnsAnswer(delay=0.05)
    users = [new_user("flush") for _ in range(40)]
    for u in users:
        await add_device(pool, u)
    uids = await store_publish(pool, users)
    url = push_redis_url if redis_state == "flushed" else "redis://127.0.0.1:1/0"
    r = aioredis.Redis.from_url(url)
    registry = Registry.from_config([{**apps[0], "concurrency": 4}])
    worker = PushWorker(pool, registry, WorkerConfig(name="w", claim_batch=4),
                        throttle=Throttle(r))
    try:
        with caplog.at_level(logging.WARNING, "tidings.workers"):
            task = asyncio.create_task(worker.run(burst=True))
            if redis_state == "flushed":
                async def some_sent():
                    return len(apns.requests) >= 10
                await eventually(some_sent, within=30)
                await r.flushdb()
            await task
    finally:
        await registry.close()
        await r.aclose()
    assert sorted(r.payload["uid"] for r in apns.requests) == sorted(uids)
    assert await jobs_of(pool, uids) == []
    warnings = [rec for rec in caplog.records if "throttle off" in rec.getMessage()]
    assert len(warnings) == (1 if redis_state == "down" else 0)


async def test_a_large_publish_shares_one_options_row(clean, pool, apns, apps):
    users = [new_user("big") for _ in range(10_000)]
    with_phone = users[::200]
    for u in with_phone:
        await add_device(pool, u)
    uids = await store_publish(pool, users, {"when": "always", "badge": 7, "extra": {"k": "v"}})
    jobs = await jobs_of(pool, uids)
    assert len(jobs) == 10_000 and len({j["options_id"] for j in jobs}) == 1
    assert await pool.fetchval("SELECT count(*) FROM tidings_push_options") == 1

    registry = Registry.from_config(apps)
    try:
        await PushWorker(pool, registry, WorkerConfig(name="w")).run(burst=True)
    finally:
        await registry.close()
    assert len(apns.requests) == len(with_phone)
    assert {(r.payload["aps"]["badge"], r.payload["k"]) for r in apns.requests} == {(7, "v")}
    assert await jobs_of(pool, uids) == []
    assert await pool.fetchval("SELECT count(*) FROM tidings_push_options") == 0


async def test_unused_options_rows_are_swept(clean, pool, user):
    await pool.execute("INSERT INTO tidings_push_options (options) VALUES ('{}')")
    await store_publish(pool, [user])
    assert await push_results.sweep_options(pool) == 1
    assert await pool.fetchval("SELECT count(*) FROM tidings_push_options") == 1
    await pool.execute("DELETE FROM tidings_push_jobs")
    assert await push_results.sweep_options(pool) == 1
