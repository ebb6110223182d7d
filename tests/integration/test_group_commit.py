"""Concurrent publishes commit together: one statement, order and counts kept, failures alone."""

from __future__ import annotations

import asyncio
import random
import uuid

import pytest

from tidings.bus import keys, presence
from tidings.bus.publisher import Publisher
from tidings.core import events
from tidings.core.errors import StoreError
from tidings.core.requests import PublishRequest
from tidings.services.publishing import Publishing
from tidings.store import publish as store

from helpers import new_user


def draft(users: list[str], content: dict, push: dict | None) -> store.Draft:
    return store.Draft(users, [str(uuid.uuid4()) for _ in users], content, push)


async def test_drafts_in_one_statement_get_seqs_in_draft_order_and_counts_after_each(pool):
    a, b, c = new_user("g"), new_user("g"), new_user("g")
    drafts = [
        draft([a, b], {"message": "one", "data": {"k": [1, 2]}}, {"when": "offline"}),
        draft([b, c], {"message": "two", "custom_info": "text"}, None),
        draft([b], {"message": "three", "changed_data": [1]}, {"when": "never"}),
    ]
    one, two, three = await store.publish(pool, store.prepare(drafts))
    def seqs(p):
        return [(u, r.seq) for u, r in zip(p.draft.users, p.rows, strict=True)]

    assert seqs(one) == [(a, 1), (b, 1)]
    assert seqs(two) == [(b, 2), (c, 1)]
    assert seqs(three) == [(b, 3)]
    assert [(r.total, r.unread, r.version)
            for r in (one.rows[1], two.rows[0], three.rows[0])] == [
        (1, 1, 1), (2, 2, 2), (3, 3, 3)], "each row carries the counts right after it"
    stored = await pool.fetch(
        "SELECT id, seq, message, data, changed_data, custom_info FROM tidings_notifications"
        " WHERE user_id = $1 ORDER BY id", b)
    assert [(r["seq"], r["message"]) for r in stored] == [(1, "one"), (2, "two"), (3, "three")]
    assert stored[0]["data"] == {"k": [1, 2]} and stored[1]["custom_info"] == "text"
    assert stored[2]["changed_data"] == [1]
    outbox = {r["id"]: r for r in await pool.fetch(
        "SELECT id, notification_ids, push FROM tidings_outbox WHERE id = ANY($1)",
        [p.outbox_id for p in (one, two, three)])}
    assert [outbox[p.outbox_id]["notification_ids"] for p in (one, two, three)] == [
        sorted(r.id for r in p.rows) for p in (one, two, three)]
    assert [outbox[p.outbox_id]["push"] for p in (one, two, three)] == [
        {"when": "offline"}, None, {"when": "never"}]
    await pool.execute("DELETE FROM tidings_outbox WHERE id = ANY($1)", list(outbox))


@pytest.fixture
async def publishing(pool, redis):
    node = f"group-{new_user()}"
    await presence.heartbeat(redis, node)
    yield Publishing(pool, Publisher(redis)), node
    await presence.leave(redis, node)
    await redis.delete(keys.node_inbox(node))


async def test_concurrent_publishes_share_statements_and_reach_the_bus_in_order(
        publishing, pool, redis):
    service, node = publishing
    users = [new_user("cg") for _ in range(5)]
    for user in users:
        await presence.add(redis, node, user)
    reqs = [PublishRequest(recipients=users[i % 5:] + users[:i % 5], message=f"m{i}")
            for i in range(40)]
    answers = await asyncio.gather(*(service.publish(r, list(r.recipients)) for r in reqs))
    assert {a.status for a in answers} == {201}
    await service.retired()
    statements = await pool.fetchval(
        "SELECT count(DISTINCT created_at) FROM tidings_notifications WHERE user_id = ANY($1)",
        users)
    assert statements < len(reqs), "publishes of one moment share a statement"
    entries = await redis.xrange(keys.node_inbox(node))
    seen: dict[str, list[int]] = {u: [] for u in users}
    for _, fields in entries:
        for d in events.deliveries(events.decode(fields[b"e"])):
            seen[d.user_id].append(d.seq)
    assert all(seqs == list(range(1, 41)) for seqs in seen.values()), "bus order = seq order"
    assert await pool.fetchval(
        "SELECT count(*) FROM tidings_outbox WHERE notification_ids && (SELECT array_agg(id)"
        " FROM tidings_notifications WHERE user_id = ANY($1))", users) == 0, "rows deleted"


async def test_a_publish_the_database_refuses_fails_alone(publishing, pool):
    service, _ = publishing
    users = [new_user("ref") for _ in range(6)]
    # NUL is refused by the HTTP layer; here it stands for any draft PostgreSQL rejects
    reqs = [PublishRequest(recipients=[u], message="bad\x00" if i == 2 else f"ok{i}")
            for i, u in enumerate(users)]
    results = await asyncio.gather(*(service.publish(r, list(r.recipients)) for r in reqs),
                                   return_exceptions=True)
    assert isinstance(results[2], StoreError)
    assert [r.status for i, r in enumerate(results) if i != 2] == [201] * 5
    stored = await pool.fetch(
        "SELECT user_id FROM tidings_notifications WHERE user_id = ANY($1)", users)
    assert sorted(r["user_id"] for r in stored) == sorted(u for i, u in enumerate(users) if i != 2)
    assert await pool.fetchval(
        "SELECT last_seq FROM tidings_user_state WHERE user_id = $1", users[2]) is None


def _bus_seqs(entries: list, user: str) -> list[int]:
    return [d.seq for _, fields in entries for d in events.deliveries(events.decode(fields[b"e"]))
            if d.user_id == user]


@pytest.mark.parametrize("runs", [4, None], ids=["four-runs", "default-runs"])
async def test_a_publish_held_in_the_database_holds_up_its_user_only(pool, redis, runs):
    node = f"group-{new_user()}"
    await presence.heartbeat(redis, node)
    service = Publishing(pool, Publisher(redis), commit_runs=runs)
    held, free = new_user("held"), new_user("free")
    for user in (held, free):
        await presence.add(redis, node, user)
    try:
        first = PublishRequest(recipients=[held], message="first")
        assert (await service.publish(first, [held])).status == 201
        async with pool.acquire() as locker, locker.transaction():
            await locker.execute(
                "SELECT 1 FROM tidings_user_state WHERE user_id = $1 FOR UPDATE", held)
            waiting = [asyncio.ensure_future(service.publish(
                PublishRequest(recipients=[held], message=m), [held])) for m in ("m2", "m3")]
            await asyncio.sleep(0.2)
            other = await asyncio.wait_for(service.publish(
                PublishRequest(recipients=[free], message="other"), [free]), 10)
            assert other.status == 201, "another user's publish commits meanwhile"
            assert not any(w.done() for w in waiting)
            assert await pool.fetchval(
                "SELECT count(*) FROM pg_stat_activity WHERE wait_event_type = 'Lock'"
                " AND query LIKE '%tidings_user_state%'") == 1, (
                "the held user's second publish waits in the node, not on the row lock")
        answers = await asyncio.wait_for(asyncio.gather(*waiting), 10)
        assert [a.body["notifications"][0]["seq"] for a in answers] == [2, 3]
        await service.retired()
        assert _bus_seqs(await redis.xrange(keys.node_inbox(node)), held) == [1, 2, 3]
    finally:
        await presence.leave(redis, node)
        await redis.delete(keys.node_inbox(node))


async def test_one_key_twice_at_once_beside_plain_publishes_stores_it_once(publishing, pool):
    service, _ = publishing
    user = new_user("kc")
    keyed = PublishRequest(recipients=[user], message="keyed", idempotency_key=f"k-{user}")
    reqs = [keyed, PublishRequest(recipients=[user], message="p1"), keyed,
            PublishRequest(recipients=[user], message="p2")]
    results = await asyncio.gather(*(service.publish(r, [user]) for r in reqs),
                                   return_exceptions=True)
    firsts = [r for r in (results[0], results[2]) if not isinstance(r, Exception)]
    assert firsts, results
    # the later of the two may be told the first is still being stored, never a second row
    for r in (results[0], results[2]):
        assert not isinstance(r, Exception) or getattr(r, "code", "") == "publish_in_progress"
    assert {r.status for r in firsts} == {201}
    assert all(r.body == firsts[0].body for r in firsts), "the repeat gets the first answer"
    assert [r.status for r in (results[1], results[3])] == [201, 201]
    rows = await pool.fetch("SELECT seq, message FROM tidings_notifications WHERE user_id = $1"
                            " ORDER BY seq", user)
    assert sorted(r["message"] for r in rows) == ["keyed", "p1", "p2"]
    assert [r["seq"] for r in rows] == [1, 2, 3], "seqs gap-free"


async def test_overlapping_publishes_in_flight_together_keep_each_users_order(pool, redis):
    node = f"group-{new_user()}"
    await presence.heartbeat(redis, node)
    service = Publishing(pool, Publisher(redis), commit_runs=4)
    users = [new_user("ov") for _ in range(12)]
    for user in users:
        await presence.add(redis, node, user)
    rng = random.Random(16)
    reqs = [PublishRequest(recipients=rng.sample(users, rng.randint(1, 3)), message=f"m{i}")
            for i in range(150)]
    try:
        answers = []
        for start in range(0, len(reqs), 30):  # several moments, each a burst
            answers += await asyncio.gather(*(service.publish(r, list(r.recipients))
                                              for r in reqs[start:start + 30]))
            await asyncio.sleep(0)
        assert {a.status for a in answers} == {201}
        await service.retired()
        expected: dict[str, list[str]] = {u: [] for u in users}
        for r in reqs:
            for u in r.recipients:
                expected[u].append(r.message)
        entries = await redis.xrange(keys.node_inbox(node))
        for user in users:
            rows = await pool.fetch("SELECT seq, message FROM tidings_notifications"
                                    " WHERE user_id = $1 ORDER BY seq", user)
            assert [r["message"] for r in rows] == expected[user], "seqs in arrival order"
            assert [r["seq"] for r in rows] == list(range(1, len(rows) + 1))
            assert _bus_seqs(entries, user) == [r["seq"] for r in rows], "bus order = seq order"
        assert await pool.fetchval(
            "SELECT count(DISTINCT created_at) FROM tidings_notifications"
            " WHERE user_id = ANY($1)", users) > 1
    finally:
        await presence.leave(redis, node)
        await redis.delete(keys.node_inbox(node))
