"""A publish committed while Redis is down reaches the bus once Redis is back, exactly once."""

from __future__ import annotations

import uuid

import orjson
import pytest

from tidings.bus import keys, presence
from tidings.bus.connect import client
from tidings.bus.publisher import Publisher
from tidings.core import events
from tidings.core.errors import Unavailable
from tidings.core.requests import PublishRequest, check_publish
from tidings.embedded import free_port, start_redis, stop_process
from tidings.services.publishing import Publishing
from tidings.workers.relay import Relay

from helpers import event_users, new_user


async def test_outbox_relay_after_redis_outage(pool, tmp_path):
    port = free_port()
    proc, url = start_redis(tmp_path, port, persist=False)
    r = client(url)
    node, user = "relay-node", new_user()
    publishing = Publishing(pool, Publisher(r))
    relay = Relay(pool, publishing, grace=0.0)
    try:
        await presence.heartbeat(r, node)
        await presence.add(r, node, user)
        stop_process(proc)

        for message in ("while redis was down", "and another"):
            req = PublishRequest(recipients=[user], message=message)
            answer = await publishing.publish(req, check_publish(req))
            assert answer.status == 201, "stored and acknowledged without Redis"
        assert await pool.fetchval("SELECT count(*) FROM tidings_outbox") >= 2
        assert await relay.run(burst=True) == 0, "Redis still down: nothing relayed, nothing lost"
        live = PublishRequest(recipients=[user], message="ephemeral", persist=False)
        with pytest.raises(Unavailable):
            await publishing.publish(live, check_publish(live))

        proc, _ = start_redis(tmp_path, port, persist=False)
        await presence.heartbeat(r, node)
        await presence.add(r, node, user)
        assert await relay.run(burst=True) >= 1
        assert await relay.run(burst=True) == 0
        entries = await r.xrange(keys.node_inbox(node))
        mine = [events.decode(fields[b"e"]) for _, fields in entries]
        mine = [e for e in mine if user in event_users(e)]
        assert len(mine) == 2, "each relayed once"
        relayed = [d for e in mine for d in events.deliveries(e)]
        assert [d.seq for d in relayed] == [1, 2], "in commit order"
        message = orjson.loads(relayed[0].frame)
        assert message["notification"]["notification"]["message"] == "while redis was down"
        assert await pool.fetchval("SELECT count(*) FROM tidings_outbox") == 0
    finally:
        await r.aclose()
        stop_process(proc)


async def test_redis_down_past_the_bound_pushes_as_if_offline_then_delivers_live(
        own_pool, tmp_path):
    port = free_port()
    proc, url = start_redis(tmp_path, port, persist=False)
    r = client(url)
    node, here = "bound-node", new_user("online")
    publishing = Publishing(own_pool, Publisher(r), uses_email=lambda kind: kind == "mailed")
    relay = Relay(own_pool, publishing, grace=0.0, push_bound=0.0)
    try:
        await presence.heartbeat(r, node)
        await presence.add(r, node, here)
        stop_process(proc)
        req = PublishRequest(recipients=[here], message="owed a push?", type="mailed")
        answer = await publishing.publish(req, check_publish(req))
        assert answer.status == 201
        uid = answer.body["notifications"][0]["uid"]
        jobs = "SELECT array_agg(channel ORDER BY channel) FROM tidings_push_jobs j" \
               " JOIN tidings_notifications n ON n.id = j.notification_id WHERE n.uid = $1"
        assert await own_pool.fetchval(jobs, uuid.UUID(uid)) is None, "presence unknown yet"

        assert await relay.run(burst=True) == 1, "past the bound: jobs handed off"
        assert await own_pool.fetchval(jobs, uuid.UUID(uid)) == ["email", "push"], "as if offline"
        row = await own_pool.fetchrow("SELECT push FROM tidings_outbox")
        assert row["push"] == {"when": "never", "handed_off": True}, \
            "kept for live delivery, owing no job"
        assert await relay.run(burst=True) == 0, "handed off once"

        proc, _ = start_redis(tmp_path, port, persist=False)
        await presence.heartbeat(r, node)
        await presence.add(r, node, here)
        assert await relay.run(burst=True) == 1
        entries = await r.xrange(keys.node_inbox(node))
        assert [d.seq for _, f in entries for d in events.deliveries(events.decode(f[b"e"]))
                ] == [1], "delivered live once Redis is back"
        assert await own_pool.fetchval("SELECT count(*) FROM tidings_outbox") == 0
        assert await own_pool.fetchval(jobs, uuid.UUID(uid)) == ["email", "push"], "no second"
    finally:
        await r.aclose()
        stop_process(proc)
