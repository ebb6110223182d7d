"""The push worker on real PostgreSQL (and Redis for the throttle), sending to the fake
APNs and FCM: outcomes, deactivation, retries, dead letters, unread checks, bounds."""

import asyncio
import time

import orjson
import pytest
from push_helpers import (
    CERT_TOPIC,
    TOPIC,
    add_device,
    jobs_of,
    outcomes,
    token_of,
)

from tidings.bus.throttle import Throttle
from tidings.push.registry import Registry
from tidings.store import delivery_log, push_results
from tidings.workers.push import PushWorker, WorkerConfig

from fakes.fake_apns import Answer as ApnsAnswer
from fakes.fake_fcm import Answer as FcmAnswer
from helpers import eventually, store_publish


async def listeners(pool) -> set[int]:
    """The backends of this database whose last statement was a ``LISTEN``."""
    return {r["pid"] for r in await pool.fetch(
        "SELECT pid FROM pg_stat_activity WHERE datname = current_database()"
        " AND query LIKE 'LISTEN %'")}


@pytest.fixture
async def make_worker(redis, pool, apps, clock):
    """Builds workers (each with its own registry, as after a restart) on the test clock.

    The jobs other tests left (retries due later) are deleted first: a worker on a clock
    moved forward would take them."""
    await pool.execute("DELETE FROM tidings_push_jobs")
    await pool.execute("DELETE FROM tidings_push_options")
    registries = []

    def make(config=None, **cfg):
        registry = Registry.from_config(config or apps)
        registries.append(registry)
        return PushWorker(pool, registry, WorkerConfig(name="w", **cfg),
                          throttle=Throttle(redis), clock=clock)

    yield make
    for registry in registries:
        await registry.close()


async def test_one_job_reaches_every_active_device_through_its_app(
        user, pool, apns, fcm, make_worker):
    default = await add_device(pool, user, "apns")
    cert = await add_device(pool, user, "apns", app_id=CERT_TOPIC)
    android = await add_device(pool, user, "fcm")
    unknown = await add_device(pool, user, "apns", app_id="com.example.unknown")
    off = await add_device(pool, user, "apns")
    await pool.execute("UPDATE tidings_devices SET active = false WHERE id = $1", off)
    [uid] = await store_publish(pool, [user], {"when": "always", "badge": 4}, title="T", type="t",
                          data={"k": 1})

    await make_worker().run(burst=True)

    assert sorted(r.headers["apns-topic"] for r in apns.requests) == [TOPIC, CERT_TOPIC]
    for r in apns.requests:  # the payload comes from the row and the shared options
        assert r.payload["aps"] == {"alert": {"body": "hello", "title": "T"}, "badge": 4}
        assert (r.payload["uid"], r.payload["seq"], r.payload["data"]) == (uid, 1, {"k": 1})
        assert r.headers["apns-collapse-id"] == uid
    [sent] = fcm.sent
    message = sent.body["message"]
    assert message["android"]["collapse_key"] == uid
    assert message["android"]["notification"]["tag"] == uid
    assert message["apns"]["headers"]["apns-collapse-id"] == uid
    assert sorted(await outcomes(pool, uid)) == sorted([
        ("pushed", default, 1), ("pushed", cert, 1), ("pushed", android, 1),
        ("failed", unknown, 1)])
    assert sorted(await outcomes(pool, uid, sending=True)) == sorted([
        *await outcomes(pool, uid), *[("sending", d, 1) for d in (default, cert, android)]])
    (failed,) = [d for d in await delivery_log.deliveries(pool, uid) if d["outcome"] == "failed"]
    assert "no push app" in failed["detail"] and failed["device"]["platform"] == "apns"
    assert await jobs_of(pool, [uid]) == []


async def test_a_producer_collapse_id_wins(user, pool, apns, fcm, make_worker):
    await add_device(pool, user, "apns")
    await add_device(pool, user, "fcm")
    await store_publish(pool, [user], {"when": "always", "collapse_id": "thread-9"})
    await make_worker().run(burst=True)
    assert [r.headers["apns-collapse-id"] for r in apns.requests] == ["thread-9"]
    assert fcm.sent[0].body["message"]["android"]["collapse_key"] == "thread-9"


async def test_invalid_tokens_deactivate_their_devices(user, pool, apns, fcm, make_worker):
    tokens = {}
    for name, platform in [("gone", "apns"), ("bad", "apns"), ("fcm_gone", "fcm"),
                           ("ok", "apns"), ("reregistered", "apns")]:
        dev = await add_device(pool, user, platform)
        tokens[name] = (dev, await token_of(pool, dev))
    apns.answer(tokens["gone"][1],
                ApnsAnswer(410, "Unregistered", timestamp=int(time.time() * 1000) + 1000))
    apns.answer(tokens["bad"][1], ApnsAnswer(400, "BadDeviceToken"))
    fcm.answer(tokens["fcm_gone"][1], FcmAnswer(404, "UNREGISTERED", "not found"))
    # Unregistered before the device registered again: the device stays.
    apns.answer(tokens["reregistered"][1], ApnsAnswer(410, "Unregistered", timestamp=1000))
    [uid] = await store_publish(pool, [user])

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

    [uid2] = await store_publish(pool, [user])
    await make_worker().run(burst=True)
    assert {dev for _, dev, _ in await outcomes(pool, uid2)} == {
        tokens["ok"][0], tokens["reregistered"][0]}


async def test_retries_back_off_then_stay_as_a_dead_letter(user, pool, apns, make_worker, clock):
    dev = await add_device(pool, user)
    token = await token_of(pool, dev)
    apns.answer(token, *[ApnsAnswer(503, "ServiceUnavailable", retry_after="30")] * 5)
    [uid] = await store_publish(pool, [user])
    worker = make_worker(max_attempts=3, backoff_base=2)

    before = clock()
    await worker.run(burst=True)
    [row] = await jobs_of(pool, [uid])
    assert (row["attempt"], row["devices"], row["leased_by"], row["dead"]) == (2, [dev], None,
                                                                               False)
    assert row["due_at"].timestamp() >= before + 30  # Retry-After beats the 1-2 s backoff
    await worker.run(burst=True)  # nothing due yet
    assert len(apns.to(token)) == 1

    for _ in range(4):
        clock.set(clock() + 3600)
        await worker.run(burst=True)

    assert len(apns.to(token)) == 3
    assert await outcomes(pool, uid) == [
        ("retry", dev, 1), ("retry", dev, 2), ("retry", dev, 3), ("dead", dev, 3)]
    [row] = await jobs_of(pool, [uid])
    assert row["dead"] and row["attempt"] == 3 and row["devices"] == [dev]
    assert "ServiceUnavailable" in row["dead_reason"]
    [letter] = [d for d in await push_results.dead_letters(pool) if d["uid"] == uid]
    assert letter["user_id"] == user and "ServiceUnavailable" in letter["reason"]


async def test_backoff_has_jitter_and_grows(user, pool, apns, make_worker, clock):
    dev = await add_device(pool, user)
    apns.answer(await token_of(pool, dev), *[ApnsAnswer(500, "InternalServerError")] * 2)
    [uid] = await store_publish(pool, [user])
    worker = make_worker(backoff_base=100)
    worker.sender._rand = lambda: 0.5  # half way into the jitter: 75 s, then 150 s
    await worker.run(burst=True)
    [row] = await jobs_of(pool, [uid])
    assert row["due_at"].timestamp() == pytest.approx(clock() + 75, abs=1)
    clock.set(clock() + 75)
    await worker.run(burst=True)
    [row] = await jobs_of(pool, [uid])
    assert row["due_at"].timestamp() == pytest.approx(clock() + 150, abs=1)


async def test_a_retry_goes_only_to_the_devices_that_asked_for_it(
        user, pool, apns, make_worker, clock):
    flaky, steady = await add_device(pool, user), await add_device(pool, user)
    apns.answer(await token_of(pool, flaky), ApnsAnswer(429, "TooManyRequests"))
    [uid] = await store_publish(pool, [user])
    worker = make_worker()
    await worker.run(burst=True)
    clock.set(clock() + 3600)
    await worker.run(burst=True)
    assert len(apns.requests) == 3
    assert sorted(await outcomes(pool, uid)) == sorted(
        [("retry", flaky, 1), ("pushed", steady, 1), ("pushed", flaky, 2)])
    assert await jobs_of(pool, [uid]) == []


async def test_one_device_gets_at_most_n_pushes_a_minute(user, pool, apns, make_worker, clock):
    dev = await add_device(pool, user)
    worker = make_worker(device_per_minute=2)
    clock.set((clock() // 60 + 1) * 60 + 1)  # the start of the next minute
    uids = []
    for _ in range(3):
        uids += await store_publish(pool, [user])
        await worker.run(burst=True)
    assert len(apns.requests) == 2
    assert await outcomes(pool, uids[2]) == [("throttled", dev, 1)]
    clock.set(clock() + 60)
    uids += await store_publish(pool, [user])
    await worker.run(burst=True)
    assert len(apns.requests) == 3 and await outcomes(pool, uids[3]) == [("pushed", dev, 1)]


async def test_unread_after_pushes_only_what_is_still_unread(user, pool, apns, make_worker,
                                                             clock):
    dev = await add_device(pool, user)
    read_uid, removed_uid, unread_uid = [
        (await store_publish(pool, [user], {"when": "unread_after", "after": 60}, delay=60,
                       check_unread=True))[0] for _ in range(3)]

    await make_worker().run(burst=True)
    assert apns.requests == [] and len(await jobs_of(pool, [read_uid, removed_uid,
                                                            unread_uid])) == 3

    await pool.execute("UPDATE tidings_notifications SET read_at = now() WHERE uid = $1", read_uid)
    await pool.execute("UPDATE tidings_notifications SET status = 'REMOVED' WHERE uid = $1",
                       removed_uid)
    clock.set(clock() + 61)
    await make_worker().run(burst=True)  # a new worker: the checks are rows

    assert [r.payload["uid"] for r in apns.requests] == [unread_uid]
    assert await outcomes(pool, unread_uid) == [("pushed", dev, 1)]
    for uid in (read_uid, removed_uid):
        assert await outcomes(pool, uid) == [("skipped", None, 1)]
    assert await jobs_of(pool, [read_uid, removed_uid, unread_uid]) == []


async def test_sends_in_flight_per_app_are_bounded(user, pool, apns, apps, make_worker):
    apns.default = ApnsAnswer(delay=0.3)
    for _ in range(6):
        await add_device(pool, user)
    await store_publish(pool, [user])
    await make_worker([{**apps[0], "concurrency": 2}]).run(burst=True)
    assert [r.status for r in apns.requests] == [200] * 6
    assert apns.peak_in_flight == 2


async def test_the_pipeline_claims_more_as_sends_finish(pool, apns, apps, make_worker):
    """Eight single-device jobs through four slots: never more than four in flight, and the
    fast ones do not wait for a slow one (no batch is awaited together)."""
    users = [f"pipe-{i}-{time.monotonic_ns()}" for i in range(8)]
    tokens = []
    for u in users:
        tokens.append(await token_of(pool, await add_device(pool, u)))
    apns.answer(tokens[0], ApnsAnswer(delay=1.0))
    for t in tokens[1:]:
        apns.answer(t, ApnsAnswer(delay=0.1))
    await store_publish(pool, users)
    worker = make_worker([{**apps[0], "concurrency": 4}], claim_batch=4)
    started = time.monotonic()
    await worker.run(burst=True)
    assert apns.peak_in_flight == 4 and [r.status for r in apns.requests] == [200] * 8
    assert time.monotonic() - started < 1.0 + 0.1 * 7  # not (1.0 + 0.1) per batch of four


async def test_a_running_worker_wakes_on_notify_and_stops_when_asked(
        user, pool, apns, make_worker):
    dev = await add_device(pool, user)
    worker = make_worker(poll=30)  # only a NOTIFY can wake it in time
    before = await listeners(pool)
    task = asyncio.create_task(worker.run())
    try:
        async def listening():
            return await listeners(pool) - before
        await eventually(listening, within=10)
        [uid] = await store_publish(pool, [user])

        async def pushed():
            return await outcomes(pool, uid) == [("pushed", dev, 1)]
        await eventually(pushed, within=10)
    finally:
        worker.stop()
        await asyncio.wait_for(task, timeout=30)
    assert len(apns.requests) == 1


async def test_invalid_options_make_a_dead_letter(user, pool, make_worker):
    await add_device(pool, user)
    [uid] = await store_publish(pool, [user], {"when": "always", "badge": "lots"})
    await make_worker().run(burst=True)
    [row] = await jobs_of(pool, [uid])
    assert row["dead"] and "not push options" in row["dead_reason"]


async def test_the_console_provider_prints_and_counts_as_pushed(user, pool, make_worker, capsys):
    dev = await add_device(pool, user, "fcm", app_id="any.app")
    [uid] = await store_publish(pool, [user])
    await make_worker([{"platform": "fcm", "kind": "console"}]).run(burst=True)
    line = orjson.loads(capsys.readouterr().out)
    assert line["device_id"] == dev and line["payload"]["message"]["data"]["uid"] == uid
    assert await outcomes(pool, uid) == [("pushed", dev, 1)]
    (row,) = [d for d in await delivery_log.deliveries(pool, uid) if d["outcome"] == "pushed"]
    assert row["channel"] == "console" and row["device"]["app_id"] == "any.app"
