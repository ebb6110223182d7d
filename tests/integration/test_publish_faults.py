"""Never a false answer: poisoned drafts fail alone, outages are 503, stored means 201.

PostgreSQL is reached through a TCP fault proxy (``tests/fakes/tcp_proxy.py``)
that refuses connections, cuts them all, or cuts one right after forwarding a
statement, so that the statement commits and the client cannot know it did.
"""

from __future__ import annotations

import asyncio
import dataclasses
import logging
import uuid

import pytest

from tidings.bus.publisher import Publisher
from tidings.core.errors import StoreError, StoreUnavailable
from tidings.core.requests import PublishRequest
from tidings.embedded import start_redis, stop_process
from tidings.services.publishing import Publishing

from fakes.tcp_proxy import through
from helpers import PRODUCER, eventually, new_user, serve_node, stored_once_each

POISON = 17  # the index of the bad publish among fifty


def deep(levels: int) -> dict:
    value: dict = {}
    for _ in range(levels):
        value = {"a": value}
    return value


@pytest.mark.parametrize("poison", ["database", "big_int", "deep", "lost_connection"])
async def test_one_poisoned_draft_in_a_group_of_fifty_fails_alone(
        proxy, proxied_pool, own_pool, redis, caplog, poison):
    caplog.set_level(logging.WARNING, logger="tidings")
    publishing = Publishing(proxied_pool, Publisher(redis))
    users = [new_user("fifty") for _ in range(50)]
    marker = f"cut-{uuid.uuid4().hex}"
    bad = {"database": {"message": "bad\x00"}, "big_int": {"data": {"n": 2**70}},
           "deep": {"data": deep(300)}, "lost_connection": {"message": marker}}[poison]
    reqs = [PublishRequest(**({"recipients": [u], "message": f"ok {i}"}
                              | (bad if i == POISON else {}))) for i, u in enumerate(users)]
    if poison == "lost_connection":
        proxy.cut_after(marker.encode())
    results = await asyncio.gather(*(publishing.publish(r, list(r.recipients)) for r in reqs),
                                   return_exceptions=True)
    grouped = [r.getMessage() for r in caplog.records if "grouped publish" in r.getMessage()]
    assert len(grouped) == 1 and "50 drafts" in grouped[0], "they shared one statement"
    stored = await stored_once_each(own_pool, users)
    if poison == "lost_connection":
        assert proxy.cuts == 1
        assert [r.status for r in results] == [201] * 50, "stored, so answered 201"
        assert stored == {u: (1, 1, 1) for u in users}, "no duplicate, no second seq"
        assert {r.body["notifications"][0]["seq"] for r in results} == {1}
        assert await own_pool.fetchval(
            "SELECT count(DISTINCT created_at) FROM tidings_notifications"
            " WHERE user_id = ANY($1)", users) == 1, "the cut statement had committed"
    else:
        failure = results[POISON]
        assert isinstance(failure, StoreError if poison == "database" else TypeError)
        assert [r.status for i, r in enumerate(results) if i != POISON] == [201] * 49
        assert stored == {u: (1, 1, 1) for i, u in enumerate(users) if i != POISON}
    await own_pool.execute("DELETE FROM tidings_outbox")


async def test_a_publish_cut_off_by_an_outage_is_settled_when_postgres_is_back(
        proxy, proxied_pool, own_pool, redis):
    publishing = Publishing(proxied_pool, Publisher(redis))
    user, marker = new_user("settle"), f"cut-{uuid.uuid4().hex}"
    proxy.cut_after(marker.encode(), refuse=True)
    req = PublishRequest(recipients=[user], message=marker)
    task = asyncio.create_task(publishing.publish(req, [user]))
    await eventually(lambda: proxy.cuts, within=5, every=0.01)
    await asyncio.sleep(0.3)  # the point: a while with the outcome unknown
    assert proxy.cuts == 1 and not task.done(), "outcome unknown: no answer yet"
    await proxy.accept()
    answer = await asyncio.wait_for(task, 10)
    assert answer.status == 201 and answer.body["notifications"][0]["seq"] == 1
    assert await stored_once_each(own_pool, [user]) == {user: (1, 1, 1)}
    await own_pool.execute("DELETE FROM tidings_outbox")


async def test_an_outcome_still_unknown_after_the_bound_is_a_503_that_says_so(
        proxy, proxied_pool, own_pool, redis):
    publishing = Publishing(proxied_pool, Publisher(redis), settle_within=0.3)
    user, marker = new_user("unknown"), f"cut-{uuid.uuid4().hex}"
    proxy.cut_after(marker.encode(), refuse=True)
    req = PublishRequest(recipients=[user], message=marker)
    with pytest.raises(StoreUnavailable, match="unknown"):
        await publishing.publish(req, [user])
    await proxy.accept()
    await own_pool.execute("DELETE FROM tidings_outbox")


async def test_postgres_down_mid_stream_every_error_is_a_503_and_none_was_stored(
        proxy, proxied_pool, own_pool, redis):
    publishing = Publishing(proxied_pool, Publisher(redis), settle_within=10)
    prefix = new_user("stream")
    answers: dict[str, object] = {}
    loop = asyncio.get_running_loop()
    stop_at = loop.time() + 1.5

    async def producer(i: int) -> None:
        k = 0
        while loop.time() < stop_at:
            user, k = f"{prefix}-{i}-{k}", k + 1
            try:
                answers[user] = (await publishing.publish(
                    PublishRequest(recipients=[user], message="m"), [user])).status
            except StoreUnavailable:
                answers[user] = 503
            except Exception as exc:  # anything else is the failure this test shows
                answers[user] = repr(exc)
            await asyncio.sleep(0.005)

    producers = [asyncio.create_task(producer(i)) for i in range(8)]
    await asyncio.sleep(0.3)  # publishing before the outage
    await proxy.refuse()
    proxy.cut_all()
    await asyncio.sleep(0.05)  # the pool sees its connections cut
    during = f"{prefix}-during"  # the producers may all be settling a cut publish: one more
    with pytest.raises(StoreUnavailable):
        await asyncio.wait_for(publishing.publish(PublishRequest(
            recipients=[during], message="m", idempotency_key=during), [during]), 2)
    answers[during] = 503
    await asyncio.sleep(0.5)  # the outage lasts, the producers keep publishing
    await proxy.accept()
    await asyncio.gather(*producers)
    stored = await stored_once_each(own_pool, list(answers))
    assert set(answers.values()) == {201, 503}, "every error is a 503"
    assert set(stored) == {u for u, a in answers.items() if a == 201}, "201 iff stored"
    assert set(stored.values()) == {(1, 1, 1)}, "each stored once"
    await own_pool.execute("DELETE FROM tidings_outbox")


async def test_postgres_unreachable_is_503_with_one_warning_per_outage(
        proxy, own_database, own_pool, settings, http, caplog):
    caplog.set_level(logging.INFO, logger="tidings")
    mine = dataclasses.replace(settings, database_url=through(proxy, own_database),
                               push_workers=False)
    async with serve_node(mine) as node:
        url = f"{node.url}/api/v1/notifications"

        async def attempt(user: str):  # (status, Retry-After, body)
            async with http.post(url, json={"recipients": [user], "message": "m"},
                                 headers=PRODUCER) as r:
                return r.status, r.headers.get("Retry-After"), await r.json()

        assert (await attempt(new_user("before")))[0] == 201
        await proxy.refuse()
        proxy.cut_all()
        users = [new_user("down") for _ in range(20)]
        answers = await asyncio.gather(*(attempt(u) for u in users))
        assert {status for status, _, _ in answers} == {503}
        assert all(int(after) >= 1 for _, after, _ in answers)
        assert {body["error"]["code"] for _, _, body in answers} == {"unavailable"}
        async with http.get(f"{node.url}/readyz") as r:
            assert r.status == 503
            ready = await r.json()
        assert ready["down"] == ["postgres"] and ready["checks"]["redis"] == "ok"

        await proxy.accept()
        async def ready() -> bool:  # the node finds PostgreSQL back by itself
            async with http.get(f"{node.url}/readyz") as r:
                return r.status == 200
        await eventually(ready, within=10)
        assert (await attempt(new_user("after")))[0] == 201

    health = [r for r in caplog.records if r.name == "tidings.services.health"]
    assert [(r.levelname, "PostgreSQL" in r.getMessage()) for r in health] == [
        ("WARNING", True), ("INFO", True)], "one line when it starts, one when it ends"
    assert not [r for r in caplog.records if r.name == "tidings.api.http"], "no tracebacks"
    assert await own_pool.fetchval(
        "SELECT count(*) FROM tidings_notifications WHERE user_id = ANY($1)", users) == 0


async def test_redis_unreachable_a_stored_publish_is_201_and_readyz_names_redis(
        own_database, own_pool, settings, http, tmp_path):
    proc, redis_url = start_redis(tmp_path, persist=False)
    mine = dataclasses.replace(settings, database_url=own_database, redis_url=redis_url,
                               push_workers=False)
    try:
        async with serve_node(mine) as node:
            stop_process(proc)
            user = new_user("noredis")
            async with http.post(f"{node.url}/api/v1/notifications", headers=PRODUCER,
                                 json={"recipients": [user], "message": "kept"}) as r:
                assert r.status == 201, "stored: the relay delivers it later"
            async with http.post(f"{node.url}/api/v1/notifications", headers=PRODUCER,
                                 json={"recipients": [user], "message": "x",
                                       "persist": False}) as r:
                assert r.status == 503 and "Retry-After" in r.headers
                assert (await r.json())["error"]["code"] == "unavailable"
            async with http.get(f"{node.url}/readyz") as r:
                assert r.status == 503
                assert (await r.json())["down"] == ["redis"]
        assert await own_pool.fetchval(
            "SELECT count(*) FROM tidings_outbox WHERE notification_ids && (SELECT array_agg(id)"
            " FROM tidings_notifications WHERE user_id = $1)", user) == 1, "left for the relay"
    finally:
        stop_process(proc)
        await own_pool.execute("DELETE FROM tidings_outbox")


@pytest.mark.xfail(strict=True, reason="a page whose outcome is unknown is sent again on"
                   " resume: the resumed send has nothing linking it to the first one's uids")
async def test_a_console_send_cut_off_midway_reaches_each_subscriber_once_when_resumed(
        proxy, proxied_pool, own_pool, redis, node, http, settings):
    """Pages of two subscribers; the second page's publish commits but its answer is lost
    and PostgreSQL stays away past the bound. Sending again after the answer's
    ``resume_after`` must not notify that page's subscribers a second time."""
    from tidings.core.admin_schemas import TypeSend
    from tidings.services.admin import Admin
    from tidings.services.context import SERVICES

    name, p = f"resume-{uuid.uuid4().hex[:8]}", new_user("cut")
    async with http.put(f"{node.url}/api/v1/types/{name}", headers=PRODUCER,
                        json={"title": "T", "channels": {"push": True}}) as r:
        assert r.status == 201
    users = [f"{p}-{i}" for i in range(4)]
    await own_pool.executemany("INSERT INTO tidings_preferences (user_id) VALUES ($1)",
                               [(u,) for u in users])
    publishing = Publishing(proxied_pool, Publisher(redis), settle_within=0.3)
    admin = Admin(settings, proxied_pool, redis, publishing, node.app[SERVICES].types,
                  page_rows=2)
    proxy.cut_after(users[2].encode(), refuse=True)
    first = await admin.send_to_type("key-test", name, TypeSend(message="m", after=p))
    await proxy.accept()
    assert first.status == 202 and first.body["resume_after"] is not None
    again = await admin.send_to_type("key-test", name,
                                     TypeSend(message="m", after=first.body["resume_after"]))
    assert again.status == 201
    counts = dict(await own_pool.fetch(
        "SELECT user_id, count(*) FROM tidings_notifications WHERE user_id = ANY($1::text[])"
        " GROUP BY user_id", users))
    assert counts == {u: 1 for u in users}
    await own_pool.execute("DELETE FROM tidings_outbox")
