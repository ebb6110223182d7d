"""A node delivers to its own sockets without the Redis hop; other nodes' go through Redis."""

from __future__ import annotations

import asyncio

from tidings.bus import keys
from tidings.client import Subscriber
from tidings.core import events

from helpers import deliveries, event_users, eventually, new_user, publish, token, uids


async def next_notification(it):
    async with asyncio.timeout(15):
        while True:
            msg = await anext(it)
            if msg["type"] == "notification":
                return msg["notification"]


async def socket_deliveries(http, url, uid):
    """The socket delivery-log entries of ``uid``, once there is at least one."""
    async def found():
        return [d for d in await deliveries(http, url, uid) if d["channel"] == "socket"]
    return await eventually(found, within=15.0, every=0.1)


async def bus_users(redis, node_id):
    entries = await redis.xrange(keys.node_inbox(node_id))
    return [u for _, f in entries for u in event_users(events.decode(f[b"e"]))]


async def test_the_publishing_node_delivers_its_own_sockets_once(nodes, http, redis):
    a, b = await nodes.start(), await nodes.start()
    here, there = new_user("here"), new_user("there")
    mine, theirs = Subscriber(a.url, token(here)), Subscriber(b.url, token(there))
    mit, tit = aiter(mine), aiter(theirs)
    async with asyncio.timeout(15):
        assert (await anext(mit))["type"] == "counts"
        assert (await anext(tit))["type"] == "counts"
    try:
        sent = uids(await publish(http, a.url, [here, there], "one"))
        assert (await next_notification(mit))["uid"] == sent[here]
        assert (await next_notification(tit))["uid"] == sent[there]
        assert here not in await bus_users(redis, a.node_id), "no Redis hop to itself"
        assert await bus_users(redis, b.node_id) == [there]

        # A later notification to the same socket through Redis (published on b): once
        # its delivery is logged, a second entry for the first would be logged too.
        later = uids(await publish(http, b.url, [here], "two"))
        got = await next_notification(mit)
        assert (got["seq"], got["uid"]) == (2, later[here])
        await socket_deliveries(http, a.url, later[here])
        assert len(await socket_deliveries(http, a.url, sent[here])) == 1, "logged once"
        assert await bus_users(redis, a.node_id) == [here], "b routed through Redis"
    finally:
        await mine.close()
        await theirs.close()
