"""The durable push worker on real Redis and PostgreSQL, sending to the fake APNs and FCM."""

import asyncio
import json
import os
import sys
import time
from pathlib import Path

import orjson
import pytest
from push_helpers import CERT_TOPIC, TOPIC, add_device, add_notification, eventually

from tidings.bus import keys
from tidings.bus.push_queue import enqueue_push
from tidings.core.push import PushJob, decode_job
from tidings.core.schemas import PushOptions
from tidings.push.registry import Registry
from tidings.store import push as store
from tidings.workers.push import PushWorker, WorkerConfig

from fakes.fake_apns import Answer as ApnsAnswer
from fakes.fake_fcm import Answer as FcmAnswer


class Clock:
    def __init__(self):
        self.now = time.time()

    def __call__(self) -> float:
        return self.now


@pytest.fixture
def clock():
    return Clock()


@pytest.fixture
async def make_worker(redis, pool, apps, clock):
    """Builds workers (each with its own registry, as after a restart) on the test clock."""
    registries = []

    def make(config=None, **cfg):
        registry = Registry.from_config(config or apps)
        registries.append(registry)
        return PushWorker(redis, pool, registry, WorkerConfig(consumer="w", **cfg), clock=clock)

    yield make
    for registry in registries:
        await registry.close()


def job(uid: str, user: str, **push) -> PushJob:
    return PushJob(uid=uid, user_id=user, seq=1, message="hello",
                   push=PushOptions(**({"when": "always"} | push)))


async def outcomes(pool, uid: str) -> list[tuple]:
    return [(d["outcome"], d["device"] and d["device"]["id"], d["attempt"])
            for d in await store.deliveries(pool, uid)]


async def test_enqueue_applies_the_policy(redis, clock):
    online = {"on"}
    jobs = [job("00000000-0000-0000-0000-000000000001", "on", when="offline"),
            job("00000000-0000-0000-0000-000000000002", "off", when="offline"),
            job("00000000-0000-0000-0000-000000000003", "on", when="always"),
            job("00000000-0000-0000-0000-000000000004", "off", when="never"),
            job("00000000-0000-0000-0000-000000000005", "on", when="unread_after", after=30)]
    assert await enqueue_push(redis, jobs, online, now=clock.now) == 3
    queued = [decode_job(f[b"job"]).uid[-1] for _, f in await redis.xrange(keys.PUSH_JOBS)]
    assert queued == ["2", "3"]
    ((member, due),) = await redis.zrange(keys.PUSH_SCHEDULED, 0, -1, withscores=True)
    assert decode_job(member).check_unread and due == pytest.approx(clock.now + 30)


async def test_one_job_reaches_every_active_device_through_its_app(
        user, redis, pool, apns, fcm, make_worker, clock):
    default = await add_device(pool, user, "apns")
    cert = await add_device(pool, user, "apns", app_id=CERT_TOPIC)
    android = await add_device(pool, user, "fcm")
    unknown = await add_device(pool, user, "apns", app_id="com.example.unknown")
    off = await add_device(pool, user, "apns")
    await pool.execute("UPDATE tidings_devices SET active = false WHERE id = $1", off)
    uid = await add_notification(pool, user, 1)
    await enqueue_push(redis, [job(uid, user, badge=4)], set(), now=clock.now)

    await make_worker().run(burst=True)

    assert sorted(r.headers["apns-topic"] for r in apns.requests) == [TOPIC, CERT_TOPIC]
    assert [s.status for s in fcm.sent] == [200]
    assert sorted(await outcomes(pool, uid)) == sorted([
        ("pushed", default, 1), ("pushed", cert, 1), ("pushed", android, 1),
        ("failed", unknown, 1)])
    (failed,) = [d for d in await store.deliveries(pool, uid) if d["outcome"] == "failed"]
    assert "no push app" in failed["detail"] and failed["device"]["platform"] == "apns"
    assert await redis.xlen(keys.PUSH_JOBS) == 0
    assert (await redis.xpending(keys.PUSH_JOBS, keys.PUSH_GROUP))["pending"] == 0


async def test_invalid_tokens_deactivate_their_devices(
        user, redis, pool, apns, fcm, make_worker, clock):
    tokens = {}
    for name, platform in [("gone", "apns"), ("bad", "apns"), ("fcm_gone", "fcm"),
                           ("ok", "apns"), ("reregistered", "apns")]:
        dev = await add_device(pool, user, platform)
        tokens[name] = (dev, await pool.fetchval(
            "SELECT token FROM tidings_devices WHERE id = $1", dev))
    apns.answer(tokens["gone"][1],
                ApnsAnswer(410, "Unregistered", timestamp=int(time.time() * 1000) + 1000))
    apns.answer(tokens["bad"][1], ApnsAnswer(400, "BadDeviceToken"))
    fcm.answer(tokens["fcm_gone"][1], FcmAnswer(404, "UNREGISTERED", "not found"))
    # Unregistered before the device registered again: the device stays.
    apns.answer(tokens["reregistered"][1], ApnsAnswer(410, "Unregistered", timestamp=1000))
    uid = await add_notification(pool, user, 1)
    await enqueue_push(redis, [job(uid, user)], set(), now=clock.now)

    await make_worker().run(burst=True)

    rows = {r["id"]: r for r in await pool.fetch(
        "SELECT * FROM tidings_devices WHERE user_id = $1", user)}
    for name in ("gone", "bad", "fcm_gone"):
        assert not rows[tokens[name][0]]["active"]
    assert rows[tokens["gone"][0]]["deactivated_reason"] == "410 Unregistered"
    assert rows[tokens["ok"][0]]["active"] and rows[tokens["reregistered"][0]]["active"]
    got = {dev: outcome for outcome, dev, _ in await outcomes(pool, uid)}
    assert got == {tokens["gone"][0]: "deactivated", tokens["bad"][0]: "deactivated",
                   tokens["fcm_gone"][0]: "deactivated", tokens["ok"][0]: "pushed",
                   tokens["reregistered"][0]: "failed"}

    uid2 = await add_notification(pool, user, 2)
    await enqueue_push(redis, [job(uid2, user)], set(), now=clock.now)
    await make_worker().run(burst=True)
    assert {dev for _, dev, _ in await outcomes(pool, uid2)} == {
        tokens["ok"][0], tokens["reregistered"][0]}


async def test_retries_back_off_then_land_in_the_dead_letter_stream(
        user, redis, pool, apns, make_worker, clock):
    dev = await add_device(pool, user)
    token = await pool.fetchval("SELECT token FROM tidings_devices WHERE id = $1", dev)
    apns.answer(token, *[ApnsAnswer(503, "ServiceUnavailable", retry_after="30")] * 5)
    uid = await add_notification(pool, user, 1)
    await enqueue_push(redis, [job(uid, user)], set(), now=clock.now)
    worker = make_worker(max_attempts=3, backoff_base=2)

    await worker.run(burst=True)
    ((member, due),) = await redis.zrange(keys.PUSH_SCHEDULED, 0, -1, withscores=True)
    assert decode_job(member).attempt == 2 and decode_job(member).devices == [dev]
    assert due >= clock.now + 30  # Retry-After beats the 1-2 s backoff
    await worker.run(burst=True)  # nothing due yet
    assert len(apns.to(token)) == 1

    for _ in range(4):
        clock.now += 3600
        await worker.run(burst=True)

    assert len(apns.to(token)) == 3
    assert await outcomes(pool, uid) == [
        ("retry", dev, 1), ("retry", dev, 2), ("retry", dev, 3), ("dead", dev, 3)]
    ((_, fields),) = await redis.xrange(keys.PUSH_DEAD)
    dead = decode_job(fields[b"job"])
    assert dead.uid == uid and dead.attempt == 3 and dead.devices == [dev]
    assert b"ServiceUnavailable" in fields[b"reason"]
    assert await redis.zcard(keys.PUSH_SCHEDULED) == 0


async def test_a_retry_goes_only_to_the_devices_that_asked_for_it(
        user, redis, pool, apns, make_worker, clock):
    flaky, steady = await add_device(pool, user), await add_device(pool, user)
    token = await pool.fetchval("SELECT token FROM tidings_devices WHERE id = $1", flaky)
    apns.answer(token, ApnsAnswer(429, "TooManyRequests"))
    uid = await add_notification(pool, user, 1)
    await enqueue_push(redis, [job(uid, user)], set(), now=clock.now)
    worker = make_worker()
    await worker.run(burst=True)
    clock.now += 3600
    await worker.run(burst=True)
    assert len(apns.requests) == 3
    assert await outcomes(pool, uid) in (
        [("retry", flaky, 1), ("pushed", steady, 1), ("pushed", flaky, 2)],
        [("pushed", steady, 1), ("retry", flaky, 1), ("pushed", flaky, 2)])


async def test_a_killed_workers_jobs_are_taken_over_and_sent_once_per_device(
        user, redis, pool, apns, apps, migrated, push_redis_url, make_worker, clock):
    first, held = await add_device(pool, user), await add_device(pool, user)
    first_token, held_token = [await pool.fetchval(
        "SELECT token FROM tidings_devices WHERE id = $1", d) for d in (first, held)]
    apns.answer(held_token, ApnsAnswer(hold=True))
    uid = await add_notification(pool, user, 1)
    await enqueue_push(redis, [job(uid, user)], set(), now=clock.now)
    proc = await asyncio.create_subprocess_exec(
        sys.executable, str(Path(__file__).with_name("worker_proc.py")), migrated, push_redis_url,
        "doomed", env={**os.environ, "TIDINGS_PUSH_CONFIG": json.dumps(apps)})
    try:
        async def first_pushed_and_second_in_flight():
            return bool(apns.to(held_token) and await outcomes(pool, uid))
        await eventually(first_pushed_and_second_in_flight)
    finally:
        proc.kill()
        await proc.wait()
    assert await outcomes(pool, uid) == [("pushed", first, 1)]
    pending = await redis.xpending(keys.PUSH_JOBS, keys.PUSH_GROUP)
    assert pending["pending"] == 1 and pending["consumers"][0]["name"] == b"doomed"

    await make_worker().run(burst=True)

    assert [r.status for r in apns.to(first_token)] == [200]
    assert [r.status for r in apns.to(held_token)] == [None, 200]
    assert sorted(await outcomes(pool, uid)) == [("pushed", first, 1), ("pushed", held, 1)]
    assert (await redis.xpending(keys.PUSH_JOBS, keys.PUSH_GROUP))["pending"] == 0


async def test_one_device_gets_at_most_n_pushes_a_minute(
        user, redis, pool, apns, make_worker, clock):
    dev = await add_device(pool, user)
    uids = [await add_notification(pool, user, seq) for seq in (1, 2, 3, 4)]
    worker = make_worker(device_per_minute=2)
    clock.now = (clock.now // 60) * 60 + 1  # the start of a minute
    for uid in uids[:3]:
        await enqueue_push(redis, [job(uid, user)], set(), now=clock.now)
        await worker.run(burst=True)
    assert len(apns.requests) == 2
    assert await outcomes(pool, uids[2]) == [("throttled", dev, 1)]
    clock.now += 60
    await enqueue_push(redis, [job(uids[3], user)], set(), now=clock.now)
    await worker.run(burst=True)
    assert len(apns.requests) == 3 and await outcomes(pool, uids[3]) == [("pushed", dev, 1)]


async def test_unread_after_pushes_only_what_is_still_unread_across_a_restart(
        user, redis, pool, apns, make_worker, clock):
    dev = await add_device(pool, user)
    read_uid, removed_uid, unread_uid = [await add_notification(pool, user, s) for s in (1, 2, 3)]
    jobs = [job(u, user, when="unread_after", after=60)
            for u in (read_uid, removed_uid, unread_uid)]
    await enqueue_push(redis, jobs, {user}, now=clock.now)  # online does not matter

    await make_worker().run(burst=True)
    assert apns.requests == [] and await redis.zcard(keys.PUSH_SCHEDULED) == 3

    await pool.execute("UPDATE tidings_notifications SET read_at = now() WHERE uid = $1", read_uid)
    await pool.execute("UPDATE tidings_notifications SET status = 'REMOVED' WHERE uid = $1",
                       removed_uid)
    clock.now += 61
    await make_worker().run(burst=True)  # a new worker: the schedule lives in Redis

    assert [r.payload["uid"] for r in apns.requests] == [unread_uid]
    assert await outcomes(pool, unread_uid) == [("pushed", dev, 1)]
    for uid in (read_uid, removed_uid):
        assert await outcomes(pool, uid) == [("skipped", None, 1)]
    assert await redis.zcard(keys.PUSH_SCHEDULED) == 0


async def test_sends_in_flight_per_app_are_bounded(
        user, redis, pool, apns, apps, make_worker, clock):
    for _ in range(6):
        dev = await add_device(pool, user)
        token = await pool.fetchval("SELECT token FROM tidings_devices WHERE id = $1", dev)
        apns.answer(token, ApnsAnswer(delay=0.3))
    uid = await add_notification(pool, user, 1)
    await enqueue_push(redis, [job(uid, user)], set(), now=clock.now)
    await make_worker([{**apps[0], "concurrency": 2}]).run(burst=True)
    assert [r.status for r in apns.requests] == [200] * 6
    assert apns.peak_in_flight == 2


async def test_a_running_worker_blocks_on_the_stream_and_stops_when_asked(
        user, redis, pool, apns, make_worker, clock):
    dev = await add_device(pool, user)
    uid = await add_notification(pool, user, 1)
    worker = make_worker(block_ms=200)
    task = asyncio.create_task(worker.run())
    try:
        await enqueue_push(redis, [job(uid, user)], set(), now=clock.now)

        async def pushed():
            return await outcomes(pool, uid) == [("pushed", dev, 1)]
        await eventually(pushed)
    finally:
        worker.stop()
        await asyncio.wait_for(task, timeout=30)
    assert len(apns.requests) == 1


async def test_an_entry_that_is_not_a_job_goes_to_the_dead_letter_stream(user, redis, make_worker):
    await redis.xadd(keys.PUSH_JOBS, {"job": b"{oops"})
    await make_worker().run(burst=True)
    ((_, fields),) = await redis.xrange(keys.PUSH_DEAD)
    assert fields[b"job"] == b"{oops" and b"not a push job" in fields[b"reason"]
    assert await redis.xlen(keys.PUSH_JOBS) == 0


async def test_the_console_provider_prints_and_counts_as_pushed(
        user, redis, pool, make_worker, clock, capsys):
    dev = await add_device(pool, user, "fcm", app_id="any.app")
    uid = await add_notification(pool, user, 1)
    await enqueue_push(redis, [job(uid, user)], set(), now=clock.now)
    await make_worker([{"platform": "fcm", "kind": "console"}]).run(burst=True)
    line = orjson.loads(capsys.readouterr().out)
    assert line["device_id"] == dev and line["payload"]["message"]["data"]["uid"] == uid
    assert await outcomes(pool, uid) == [("pushed", dev, 1)]
    (row,) = await store.deliveries(pool, uid)
    assert row["channel"] == "console" and row["device"]["app_id"] == "any.app"
