"""The publish statement is idempotent on uids; the hand-off writes the owed push jobs."""

from __future__ import annotations

import asyncio
import logging
import uuid

import pytest

from tidings.bus import keys, presence
from tidings.bus.publisher import Publisher
from tidings.core.requests import PublishRequest, PushOptions
from tidings.services.publishing import Publishing
from tidings.store import db
from tidings.store import publish as store

from helpers import new_user


@pytest.fixture
def pool(own_pool):
    """This module's own database: no push worker of another test claims its jobs."""
    return own_pool


def draft(users: list[str], message: str = "hello") -> store.Draft:
    return store.Draft(users, [str(uuid.uuid4()) for _ in users], {"message": message},
                       {"when": "offline"})


async def forget_outbox(pool, users: list[str]) -> None:
    await pool.execute(
        "DELETE FROM tidings_outbox WHERE notification_ids && (SELECT array_agg(id)"
        " FROM tidings_notifications WHERE user_id = ANY($1))", users)


async def test_a_second_attempt_stores_nothing_twice_and_allocates_no_seq(pool):
    a, b = new_user("idem"), new_user("idem")
    prepared = store.prepare([draft([a, b]), draft([b], "second")])
    first = await store.publish(pool, prepared)
    again = await store.publish(pool, prepared)
    assert [[(r.id, r.seq) for r in p.rows] for p in again] == [
        [(r.id, r.seq) for r in p.rows] for p in first]
    assert all(r.total is None for p in again for r in p.rows), "read back, not counted"
    assert [p.outbox_id for p in again] == [0, 0] and all(p.outbox_id for p in first)
    state = await pool.fetch("SELECT user_id, last_seq, total_count, unread_count"
                             " FROM tidings_user_state WHERE user_id = ANY($1) ORDER BY 1",
                             sorted([a, b]))
    assert {r["user_id"]: tuple(r)[1:] for r in state} == {a: (1, 1, 1), b: (2, 2, 2)}
    assert await pool.fetchval("SELECT count(*) FROM tidings_notifications"
                               " WHERE user_id = ANY($1)", [a, b]) == 3
    assert await pool.fetchval("SELECT count(*) FROM tidings_outbox WHERE id = ANY($1)",
                               [p.outbox_id for p in first]) == 2, "one outbox row each"
    await forget_outbox(pool, [a, b])


async def test_concurrent_attempts_of_the_same_drafts_store_once(pool):
    users = [new_user("race") for _ in range(20)]
    prepared = store.prepare([draft(users)])
    results = await asyncio.gather(*(store.publish(pool, prepared) for _ in range(4)))
    seqs = {tuple(row.seq for row in r[0].rows) for r in results}
    assert seqs == {tuple([1] * 20)}
    assert await pool.fetchval("SELECT count(*) FROM tidings_notifications"
                               " WHERE user_id = ANY($1)", users) == 20
    assert await pool.fetchval("SELECT max(last_seq) FROM tidings_user_state"
                               " WHERE user_id = ANY($1)", users) == 1
    await forget_outbox(pool, users)


@pytest.fixture
async def service(pool, redis):
    """A node id with one online user; the service publishing to it."""
    node = f"handoff-{new_user()}"
    await presence.heartbeat(redis, node)
    yield Publishing(pool, Publisher(redis)), node
    await presence.leave(redis, node)
    await redis.delete(keys.node_inbox(node))


async def jobs_of(pool, uids: list[str]) -> dict[str, tuple[bool, float]]:
    """uid -> (check_unread, seconds until due) of the push jobs of these notifications."""
    rows = await pool.fetch(
        "SELECT n.uid::text AS uid, j.check_unread,"
        " extract(epoch FROM j.due_at - now())::float8 AS due_in, o.options"
        " FROM tidings_push_jobs j JOIN tidings_notifications n ON n.id = j.notification_id"
        " JOIN tidings_push_options o ON o.id = j.options_id WHERE n.uid = ANY($1::uuid[])",
        uids)
    return {r["uid"]: (r["check_unread"], r["due_in"], r["options"]) for r in rows}


@pytest.mark.parametrize(("when", "owed"), [
    ("offline", {"away"}), ("always", {"here", "away"}),
    ("unread_after", {"here", "away"}), ("never", set()),
])
async def test_the_hand_off_writes_the_push_jobs_the_policy_owes(service, pool, redis, when,
                                                                 owed):
    publishing, node_id = service
    here, away = new_user("here"), new_user("away")
    await presence.add(redis, node_id, here)
    push = PushOptions(when=when, after=60 if when == "unread_after" else None, badge=3)
    req = PublishRequest(recipients=[here, away], message="hi", push=push)
    answer = await publishing.publish(req, [here, away])
    assert answer.status == 201
    await publishing.retired()  # after the answer, in the background
    uids = {n["recipient"]: n["uid"] for n in answer.body["notifications"]}
    jobs = await jobs_of(pool, list(uids.values()))
    assert set(jobs) == {uids[u] for u in ({"here": here, "away": away}[w] for w in owed)}
    for check_unread, due_in, options in jobs.values():
        assert options["badge"] == 3 and options.get("when", "offline") == when
        if when == "unread_after":
            assert check_unread and 55 < due_in <= 60
        else:
            assert not check_unread and due_in <= 0.5
    assert await pool.fetchval(
        "SELECT count(*) FROM tidings_outbox WHERE notification_ids && (SELECT array_agg(id)"
        " FROM tidings_notifications WHERE user_id = ANY($1))", [here, away]) == 0, "retired"
    await pool.execute("DELETE FROM tidings_push_jobs WHERE notification_id IN (SELECT id"
                       " FROM tidings_notifications WHERE user_id = ANY($1))", [here, away])


async def test_a_connection_failing_on_release_does_not_replace_what_the_block_got(
        own_pool, caplog):
    """asyncpg raises on release when the connection is busy (as after a cut mid-answer)."""
    caplog.set_level(logging.INFO, logger="tidings.store.db")
    async with db.connection(own_pool) as conn:
        await conn.execute("BEGIN")
        busy = asyncio.ensure_future(conn.fetchval("SELECT pg_sleep(0.2)"))
        await asyncio.sleep(0.01)
        got = await own_pool.fetchval("SELECT 42")
    assert got == 42
    assert any("failed on release" in r.getMessage() for r in caplog.records)
    [dropped] = await asyncio.gather(busy, return_exceptions=True)
    assert isinstance(dropped, Exception), "the busy connection was dropped"
    await db.ping(own_pool)  # the pool goes on


async def test_releasing_a_connection_sends_no_reset_query(own_database, own_pool):
    pool = await db.create_pool(own_database, min_size=1, max_size=1)
    try:
        pid = await pool.fetchval("SELECT pg_backend_pid()")  # then released
        last = await own_pool.fetchval("SELECT query FROM pg_stat_activity WHERE pid = $1", pid)
        assert last == "SELECT pg_backend_pid()", "no reset query after the release"
    finally:
        await pool.close()
