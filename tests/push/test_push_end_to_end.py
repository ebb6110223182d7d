"""Publish over HTTP to a node with push apps pointing at the fakes: the full fallback path."""

from __future__ import annotations

import asyncio
import json
from dataclasses import replace

import pytest
from push_helpers import apns_token

from tidings.app import push_worker
from tidings.client import Subscriber
from tidings.services.context import SERVICES

from helpers import PRODUCER, serve_node, token, user_headers


@pytest.fixture
async def push_node(settings, push_redis_url, apps, redis, pool):
    await pool.execute("DELETE FROM tidings_push_jobs")  # the worker here takes what is due
    s = replace(settings, redis_url=push_redis_url, push_config=json.dumps(apps),
                push_workers=False)
    async with serve_node(s) as node:
        yield node


async def register(http, node, user, tok):
    async with http.post(f"{node.url}/api/v1/me/devices", headers=user_headers(user),
                         json={"token": tok, "platform": "apns"}) as r:
        assert r.status == 201


async def test_offline_user_gets_push_online_user_does_not(push_node, http, apns, pool, redis):
    online, offline = "e2e-on-" + apns_token()[:8], "e2e-off-" + apns_token()[:8]
    on_tok, off_tok = apns_token(), apns_token()
    await register(http, push_node, online, on_tok)
    await register(http, push_node, offline, off_tok)
    sub = Subscriber(push_node.url, token(online))
    it = aiter(sub)
    async with asyncio.timeout(10):
        assert (await anext(it))["type"] == "counts"
    async with http.post(f"{push_node.url}/api/v1/notifications", headers=PRODUCER,
                         json={"recipients": [online, offline], "message": "ping",
                               "push": {"badge": 1}}) as r:
        assert r.status == 201
        created = {n["recipient"]: n["uid"] for n in (await r.json())["notifications"]}
    async with asyncio.timeout(10):
        assert (await anext(it))["notification"]["notification"]["message"] == "ping"

    services = push_node.app[SERVICES]
    await services.publishing.retired()  # the push jobs are written after the answer
    worker, registry = push_worker(services.settings, redis, pool)
    try:
        await worker.run(burst=True)
    finally:
        await registry.close()
    assert [req.token for req in apns.requests] == [off_tok]
    assert apns.requests[0].payload["aps"]["badge"] == 1

    async def deliveries(user):
        async with http.get(f"{push_node.url}/api/v1/notifications/{created[user]}/deliveries",
                            headers=PRODUCER) as r:
            assert r.status == 200
            return await r.json()

    off = await deliveries(offline)
    assert off["recipient"] == offline
    assert [(d["channel"], d["outcome"]) for d in off["deliveries"]] == [
        ("apns", "sending"), ("apns", "pushed")]
    for _ in range(100):  # the node writes socket deliveries in batches
        on = await deliveries(online)
        if on["deliveries"]:
            break
        await asyncio.sleep(0.05)
    assert [(d["channel"], d["outcome"]) for d in on["deliveries"]] == [("socket", "delivered")]
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
    async with http.post(f"{push_node.url}/api/v1/notifications", headers=PRODUCER,
                         json={"recipients": [user], "message": "ack me",
                               "push": {"when": "never"}}) as r:
        uid = (await r.json())["notifications"][0]["uid"]
    async with asyncio.timeout(10):
        msg = await anext(it)
    await sub.send({"type": "ack", "seq": msg["notification"]["seq"]})
    await sub.send({"type": "ack", "seq": 999})  # never sent to this socket: not logged
    outcomes: list = []
    for _ in range(100):
        async with http.get(f"{push_node.url}/api/v1/notifications/{uid}/deliveries",
                            headers=PRODUCER) as r:
            outcomes = [(d["channel"], d["outcome"]) for d in (await r.json())["deliveries"]]
        if ("socket", "acked") in outcomes:
            break
        await asyncio.sleep(0.05)
    assert sorted(outcomes) == [("socket", "acked"), ("socket", "delivered")]
    await sub.close()
