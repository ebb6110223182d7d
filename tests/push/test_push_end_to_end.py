"""Publish over HTTP to a node with push apps pointing at the fakes: the full fallback path."""

from __future__ import annotations

import asyncio

from push_helpers import apns_token, work

from tidings.client import Subscriber

from helpers import (
    PRODUCER,
    deliveries,
    eventually,
    publish,
    register_device,
    token,
    uids,
    user_headers,
)


async def test_offline_user_gets_push_online_user_does_not(push_node, http, apns, pool, redis):
    online, offline = "e2e-on-" + apns_token()[:8], "e2e-off-" + apns_token()[:8]
    on_tok, off_tok = apns_token(), apns_token()
    await register_device(http, push_node, online, token=on_tok, platform="apns")
    await register_device(http, push_node, offline, token=off_tok, platform="apns")
    sub = Subscriber(push_node.url, token(online))
    it = aiter(sub)
    async with asyncio.timeout(10):
        assert (await anext(it))["type"] == "counts"
    created = uids(await publish(http, push_node, [online, offline], "ping",
                                 push={"badge": 1}))
    async with asyncio.timeout(10):
        assert (await anext(it))["notification"]["notification"]["message"] == "ping"

    await work(push_node, redis, pool)
    assert [req.token for req in apns.requests] == [off_tok]
    assert apns.requests[0].payload["aps"]["badge"] == 1

    async def log_of(user):
        async with http.get(f"{push_node.url}/api/v1/notifications/{created[user]}/deliveries",
                            headers=PRODUCER) as r:
            assert r.status == 200
            return await r.json()

    off = await log_of(offline)
    assert off["recipient"] == offline
    assert [(d["channel"], d["outcome"]) for d in off["deliveries"]] == [
        ("apns", "sending"), ("apns", "pushed")]

    async def on_logged():  # the node writes socket deliveries in batches
        return (await log_of(online))["deliveries"]
    on = await eventually(on_logged, within=5)
    assert [(d["channel"], d["outcome"]) for d in on] == [("socket", "delivered")]
    async with http.get(f"{push_node.url}/api/v1/notifications/{created[online]}/deliveries",
                        headers=user_headers(online)) as r:
        assert r.status == 401, "producers only"
    await sub.close()


async def test_socket_acks_are_logged(push_node, http):
    user = "e2e-ack-" + apns_token()[:8]
    sub = Subscriber(push_node.url, token(user))
    it = aiter(sub)
    async with asyncio.timeout(10):
        await anext(it)
    uid = uids(await publish(http, push_node, [user], "ack me", push={"when": "never"}))[user]
    async with asyncio.timeout(10):
        msg = await anext(it)
    await sub.send({"type": "ack", "seq": msg["notification"]["seq"]})
    await sub.send({"type": "ack", "seq": 999})  # never sent to this socket: not logged

    async def acked():
        got = [(d["channel"], d["outcome"]) for d in await deliveries(http, push_node, uid)]
        return got if ("socket", "acked") in got else None
    outcomes = await eventually(acked, within=5)
    assert sorted(outcomes) == [("socket", "acked"), ("socket", "delivered")]
    await sub.close()
