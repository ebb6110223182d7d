"""Large publishes are streamed: stored chunk by chunk, each chunk routed once committed.

Faults are real: a user's state row locked by another transaction holds a chunk
back, a CHECK constraint refuses one, and a TCP fault proxy in front of
PostgreSQL cuts the connection right after a chunk's statement was sent, or
goes away for good.
"""

from __future__ import annotations

import asyncio
import logging
import uuid

import pytest

from tidings.bus.publisher import Publisher
from tidings.core.errors import Conflict
from tidings.core.requests import PublishRequest
from tidings.services import drafting
from tidings.services.publishing import Publishing
from tidings.store import db
from tidings.workers.relay import Relay

from helpers import new_user

CHUNK = 10
N = 36  # recipients: chunks of 1 (a tenth of CHUNK), 10, 10, 10 and 5
SIZES = [1, 10, 10, 10, 5]
THIRD = slice(11, 21)  # the third chunk's recipients


@pytest.fixture
def pool(own_pool):
    return own_pool


class Here:
    """A node's local delivery that records what it was handed, and when."""

    def __init__(self) -> None:
        self.events: list[dict] = []
        self.changed = asyncio.Event()

    def __call__(self, evs):
        self.events += evs
        self.changed.set()
        return set()

    async def until(self, n: int) -> None:
        while len(self.events) < n:
            self.changed.clear()
            await asyncio.wait_for(self.changed.wait(), 10)

    def rows(self) -> list[list]:
        return [row for e in self.events for row in e["r"]]


def streaming(pool, redis, here: Here | None = None, **kw) -> Publishing:
    return Publishing(pool, Publisher(redis), here=("streamed-node", here or Here()),
                      chunk_rows=CHUNK, **kw)


async def stored(pool, users: list[str]) -> dict[str, list[tuple[str, int]]]:
    """user -> [(uid, seq)] of what is stored, and each user's last_seq is checked."""
    rows = await pool.fetch(
        "SELECT n.user_id, n.uid::text, n.seq, s.last_seq, s.total_count FROM"
        " tidings_notifications n JOIN tidings_user_state s USING (user_id)"
        " WHERE n.user_id = ANY($1) ORDER BY n.id", users)
    out: dict[str, list[tuple[str, int]]] = {}
    for r in rows:
        assert (r["last_seq"], r["total_count"]) == (1, 1), "one seq, counted once"
        out.setdefault(r["user_id"], []).append((r["uid"], r["seq"]))
    return out


async def streamed_rows(pool) -> int:
    return await pool.fetchval("SELECT count(*) FROM tidings_streamed")


async def make_due(pool) -> None:
    """Time passes: what is left of streamed publishes is the relay's now."""
    await pool.execute("UPDATE tidings_streamed SET due_at = now()")


async def tidy(pool) -> None:
    await pool.execute("DELETE FROM tidings_outbox")
    await pool.execute("DELETE FROM tidings_streamed")


async def test_each_chunk_is_routed_once_committed_before_the_rest_is_stored(pool, redis):
    here = Here()
    publishing = streaming(pool, redis, here)
    users = [new_user("stream") for _ in range(N)]
    held = users[15]  # in the third chunk
    await pool.execute("INSERT INTO tidings_user_state (user_id) VALUES ($1)", held)
    async with db.connection(pool) as blocker, db.transaction(blocker):
        await blocker.execute("SELECT 1 FROM tidings_user_state WHERE user_id = $1 FOR UPDATE",
                              held)
        task = asyncio.create_task(publishing.publish(
            PublishRequest(recipients=users, message="big"), users))
        await here.until(2)  # the first two chunks are out while the third waits
        assert [len(e["r"]) for e in here.events] == SIZES[:2]
        assert [row[0] for row in here.rows()] == users[:11], "in order"
        ids = [row[1] for row in here.rows()]
        assert await pool.fetchval(
            "SELECT count(*) FROM tidings_notifications WHERE id = ANY($1)", ids) == 11, \
            "only committed rows are routed"
        assert await pool.fetchval(
            "SELECT count(*) FROM tidings_notifications WHERE user_id = ANY($1)", users) == 11
        assert await pool.fetchval(
            "SELECT users FROM tidings_streamed WHERE uid_base = $1::uuid",
            here.rows()[0][2]) == users, "the whole publish is on record"
        assert not task.done()
    answer = await asyncio.wait_for(task, 10)
    assert answer.status == 201 and answer.body["created"] == N
    body = answer.body["notifications"]
    assert [n["recipient"] for n in body] == users and {n["seq"] for n in body} == {1}
    assert [n["uid"] for n in body] == drafting.uids(body[0]["uid"], N)
    assert len({n["uid"] for n in body}) == N
    assert [len(e["r"]) for e in here.events] == SIZES
    assert [row[2] for row in here.rows()] == [n["uid"] for n in body]
    assert await stored(pool, users) == {n["recipient"]: [(n["uid"], 1)] for n in body}
    assert await streamed_rows(pool) == 0, "the record goes with the last chunk"
    await publishing.retired()
    assert await pool.fetchval("SELECT count(*) FROM tidings_outbox") == 0, "all handed off"


async def test_a_publish_of_one_chunk_or_less_is_not_streamed(pool, redis):
    here = Here()
    users = [new_user("small") for _ in range(CHUNK)]
    answer = await streaming(pool, redis, here).publish(
        PublishRequest(recipients=users, message="small"), users)
    assert answer.status == 201 and [len(e["r"]) for e in here.events] == [CHUNK]
    assert await pool.fetchval(
        "SELECT count(*) FROM tidings_streamed WHERE $1 = ANY(users)", users[0]) == 0
    await tidy(pool)


async def test_a_later_chunk_refused_is_a_202_and_the_relay_stores_the_rest(
        pool, redis, caplog):
    caplog.set_level(logging.INFO, logger="tidings")
    here = Here()
    publishing = streaming(pool, redis, here)
    users = [new_user("refused") for _ in range(N)]
    await pool.execute(f"ALTER TABLE tidings_notifications ADD CONSTRAINT refuse_one"
                       f" CHECK (user_id <> '{users[15]}') NOT VALID")
    try:
        answer = await publishing.publish(PublishRequest(recipients=users, message="m"),
                                          users)
        assert answer.status == 202, "accepted, not all stored: never an error"
        body = answer.body
        assert (body["created"], body["pending"]) == (11, 25)
        assert [n["recipient"] for n in body["notifications"]] == users
        assert [n["seq"] for n in body["notifications"]] == [1] * 11 + [None] * 25
        assert [row[0] for row in here.rows()] == users[:11], "what is stored was routed"
        assert set(await stored(pool, users)) == set(users[:11])
        await make_due(pool)
        assert await publishing.streams.complete_due() == 0, "refused again: tried later"
        assert await pool.fetchval(
            "SELECT due_at > now() + interval '30 s' FROM tidings_streamed") is True
        assert any("could not be completed" in r.getMessage() for r in caplog.records)
    finally:
        await pool.execute("ALTER TABLE tidings_notifications DROP CONSTRAINT refuse_one")
    await make_due(pool)
    await publishing.retired()
    assert await Relay(pool, publishing, grace=0).run(burst=True) >= 2, "stored, then routed"
    assert await stored(pool, users) == {
        n["recipient"]: [(n["uid"], 1)] for n in body["notifications"]}, \
        "every recipient once, with the uid the 202 gave"
    assert await streamed_rows(pool) == 0
    routed = [row[0] for row in here.rows()]
    assert routed[:11] == users[:11] and sorted(routed[11:]) == sorted(users[11:]), \
        "the rest routed by the relay"
    assert await pool.fetchval("SELECT count(*) FROM tidings_outbox") == 0
    await tidy(pool)


async def test_a_chunk_whose_connection_is_cut_is_settled_and_answered_201(
        proxy, proxied_pool, pool, redis):
    here = Here()
    publishing = streaming(proxied_pool, redis, here)
    marker = f"cut-{uuid.uuid4().hex}"
    users = [new_user("cut") for _ in range(N)]
    users[15] = marker  # a recipient of the third chunk: its statement carries it
    task = asyncio.create_task(
        publishing.publish(PublishRequest(recipients=users, message="m"), users))
    await here.until(1)  # past the first chunk (whose record names every recipient)
    proxy.cut_after(marker.encode())
    answer = await asyncio.wait_for(task, 20)
    assert proxy.cuts == 1
    assert answer.status == 201 and answer.body["created"] == N
    assert {n["seq"] for n in answer.body["notifications"]} == {1}
    assert await stored(pool, users) == {
        n["recipient"]: [(n["uid"], 1)] for n in answer.body["notifications"]}
    # The cut chunk was stored by its first attempt: read back, its outbox row (written
    # then) is the relay's to route, as for any publish whose connection was cut.
    assert [row[0] for row in here.rows()] == users[:11] + users[21:]
    await publishing.retired()
    left = await pool.fetch("SELECT n.user_id FROM tidings_outbox o JOIN tidings_notifications"
                            " n ON n.id = ANY(o.notification_ids) WHERE n.user_id = ANY($1)",
                            users)
    assert sorted(r[0] for r in left) == sorted(users[THIRD])
    await tidy(pool)


@pytest.mark.parametrize("keyed", [False, True])
async def test_postgres_gone_midway_is_a_202_and_the_publish_is_completed_later(
        proxy, proxied_pool, pool, redis, keyed):
    here = Here()
    publishing = streaming(proxied_pool, redis, here, settle_within=0.5)
    marker = f"gone-{uuid.uuid4().hex}"
    users = [new_user("gone") for _ in range(N)]
    users[15] = marker
    key = f"key-{uuid.uuid4().hex}" if keyed else None
    req = PublishRequest(recipients=users, message="m", idempotency_key=key)
    task = asyncio.create_task(publishing.publish(req, users))
    await here.until(1)  # past the first chunk (whose record names every recipient)
    proxy.cut_after(marker.encode(), refuse=True)
    answer = await asyncio.wait_for(task, 20)
    assert proxy.cuts == 1 and answer.status == 202 and answer.body["pending"] == 25
    stored_now = [n for n in answer.body["notifications"] if n["seq"] is not None]
    assert [n["recipient"] for n in stored_now] == users[:11]
    await proxy.accept()
    if keyed:
        with pytest.raises(Conflict) as caught:
            await publishing.publish(req, users)
        assert caught.value.code == "publish_in_progress"
    await make_due(pool)
    assert await streaming(pool, redis).streams.complete_due() == 1
    assert await stored(pool, users) == {
        n["recipient"]: [(n["uid"], 1)] for n in answer.body["notifications"]}
    if keyed:
        again = await publishing.publish(req, users)
        assert again.status == 201 and again.body["created"] == N
        assert [(n["uid"], n["seq"]) for n in again.body["notifications"]] == [
            (n["uid"], 1) for n in answer.body["notifications"]]
    await tidy(pool)


async def test_a_keyed_streamed_publish_answers_its_repeat_with_the_same_201(pool, redis):
    publishing = streaming(pool, redis)
    users = [new_user("keyed") for _ in range(25)]
    req = PublishRequest(recipients=users, message="m", idempotency_key=new_user("k"))
    first = await publishing.publish(req, users)
    again = await publishing.publish(req, users)
    assert first.status == again.status == 201 and first.body == again.body
    assert len(await stored(pool, users)) == 25
    other = PublishRequest(recipients=users, message="other", idempotency_key=req.idempotency_key)
    with pytest.raises(Conflict) as caught:
        await publishing.publish(other, users)
    assert caught.value.code == "idempotency_key_reused"
    await tidy(pool)
