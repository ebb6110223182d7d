"""The publisher's routing script: presence, split per node and XADD in one round trip."""

from __future__ import annotations

import time

import redis.asyncio as aioredis

from tidings.bus import keys, presence
from tidings.bus.publisher import Publisher
from tidings.core import events
from tidings.core.replies import Counts

from helpers import event_part, new_user


def _event(users: list[str], message: str) -> dict:
    return events.notification_event(
        {"message": message}, [[u, i, f"uid-{u}", 1, 1, 1, 1]
                               for i, u in enumerate(users, 1)], {"when": "offline"})


async def test_each_live_node_gets_only_its_rows_in_order(redis):
    a, b, stale = (f"route-{new_user()}" for _ in range(3))
    many = [new_user("bc") for _ in range(2500)]  # past the script's SMISMEMBER chunk
    ua, ub, away, gone = new_user("a"), new_user("b"), new_user("away"), new_user("gone")
    await presence.heartbeat(redis, a)
    await presence.heartbeat(redis, b)
    await presence.heartbeat(redis, stale, time.time() - presence.LIVENESS - 5)
    for user in (ua, *many[:1200]):
        await presence.add(redis, a, user)
    for user in (ub, *many[1200:1300], ua):
        await presence.add(redis, b, user)
    await presence.add(redis, stale, gone)
    try:
        evs = [_event([ua, ub, away], "one"), events.counts_event(ub, Counts(4, 2, 9)),
               _event([away, gone], "nobody"), _event(many, "broadcast"),
               _event([ua], "two")]
        online = await Publisher(redis).publish(evs)
        assert online == {ua, ub, *many[:1300]}

        def read(entries):
            return [events.decode(f[keys.INBOX_EVENT.encode()]) for _, f in entries]

        got_a = read(await redis.xrange(keys.node_inbox(a)))
        got_b = read(await redis.xrange(keys.node_inbox(b)))
        assert got_a == [event_part(e, {ua, *many[:1200]}) for e in (evs[0], evs[3], evs[4])]
        assert got_b == [event_part(e, {ua, ub, *many[1200:1300]})
                         for e in (evs[0], evs[1], evs[3], evs[4])]
        assert await redis.xlen(keys.node_inbox(stale)) == 0, "a stale node is not routed to"
        assert await Publisher(redis).publish([]) == set()
        for node in (a, b):
            await redis.delete(keys.node_inbox(node))
        assert await Publisher(redis).publish([evs[0]], skip=a) == {ua, ub}, "b's only"
        assert await redis.xlen(keys.node_inbox(a)) == 0, "the skipped node gets nothing"
        assert read(await redis.xrange(keys.node_inbox(b))) == [
            event_part(evs[0], {ua, ub})]
    finally:
        for node in (a, b, stale):
            await presence.leave(redis, node)
            await redis.delete(keys.node_inbox(node))


async def test_a_publisher_alone_asks_first_and_still_routes_to_a_node_that_joins(
        redis_url, monkeypatch):
    r = aioredis.Redis.from_url(redis_url, db=9)  # a Redis of its own: no other test's nodes
    await r.flushdb()
    me, other, user = "node-me", "node-other", new_user("join")
    encoded = []  # this test's events encoded (other tests' nodes may run in this process)
    encode = events.encode_parts
    monkeypatch.setattr(events, "encode_parts", lambda e: (
        e.get("r", [[None]])[0][0] == user and encoded.append(e)) or encode(e))
    try:
        await presence.heartbeat(r, me)
        await presence.add(r, me, user)
        publisher = Publisher(r)
        assert await publisher.publish([_event([user], "one")], skip=me) == set()
        assert len(encoded) == 1, "the first call finds out it is alone"
        assert await publisher.publish([_event([user], "two")], skip=me) == set()
        assert len(encoded) == 1, "alone: asked, nothing encoded"
        await presence.heartbeat(r, other)
        await presence.add(r, other, user)
        three = _event([user], "three")
        assert await publisher.publish([three], skip=me) == {user}
        assert [events.decode(f[keys.INBOX_EVENT.encode()])
                for _, f in await r.xrange(keys.node_inbox(other))] == [three]
        await presence.leave(r, other)
        assert await publisher.publish([_event([user], "four")], skip=me) == set()
        assert await publisher.publish([_event([user], "five")], skip=me) == set()
        assert len(encoded) == 3, "alone again after one more full call"
    finally:
        await r.flushdb()
        await r.aclose()
