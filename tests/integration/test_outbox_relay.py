"""A publish committed while Redis is down reaches the bus once Redis is back, exactly once."""

from __future__ import annotations

import orjson
import pytest

from tidings.bus import keys, presence
from tidings.bus.connect import client
from tidings.bus.publisher import Publisher
from tidings.core import events
from tidings.core.errors import Unavailable
from tidings.core.schemas import PublishRequest, check_publish
from tidings.embedded import free_port, start_redis, stop_process
from tidings.services.publishing import Publishing
from tidings.workers.relay import Relay

from helpers import new_user


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
        mine = [e for e in mine if user in events.users_of(e)]
        assert len(mine) == 2, "each relayed once"
        relayed = [d for e in mine for d in events.deliveries(e)]
        assert [d.seq for d in relayed] == [1, 2], "in commit order"
        message = orjson.loads(relayed[0].frame)
        assert message["notification"]["notification"]["message"] == "while redis was down"
        assert await pool.fetchval("SELECT count(*) FROM tidings_outbox") == 0
    finally:
        await r.aclose()
        stop_process(proc)
