"""The gateway's edges on real servers: the node-inbox reader and replays longer than a queue."""

from __future__ import annotations

import asyncio
from dataclasses import replace

import pytest
import redis.asyncio as aioredis

from tidings.bus import keys
from tidings.bus.connect import blocking_client
from tidings.bus.node_inbox import NodeInbox
from tidings.core.errors import BusUnavailable
from tidings.embedded import free_port, start_redis, stop_process

from helpers import PRODUCER, new_user, serve_node, token

WS = "/ws/me/notifications"


async def test_node_inbox_reads_in_order_once_and_fails_as_bus_unavailable(tmp_path):
    proc, url = start_redis(tmp_path, free_port(), persist=False)
    r = aioredis.Redis.from_url(url)
    blocking = blocking_client(url)
    try:
        reader = NodeInbox(blocking, "edge-node", count=2)
        stream = keys.node_inbox("edge-node")
        assert await reader.read(10) == []
        for i in range(3):
            await r.xadd(stream, {keys.INBOX_EVENT: f"e{i}"})
        await r.xadd(stream, {"other": "x"})  # no event field: skipped, not fatal
        await r.xadd(stream, {keys.INBOX_EVENT: "e3"})
        got = []
        while len(got) < 4:
            got += await reader.read(10)
        assert got == [b"e0", b"e1", b"e2", b"e3"]
        assert await reader.read(10) == [], "each entry once"
        last = reader.last_id
        stop_process(proc)
        with pytest.raises(BusUnavailable):
            await reader.read(10)
        assert reader.last_id == last, "a failed read moves nothing"
    finally:
        stop_process(proc)
        await blocking.aclose()
        await r.aclose()


async def test_replay_longer_than_the_send_queue_goes_in_slices_then_live(settings, http):
    async with serve_node(replace(settings, ws_send_queue=8)) as node:
        user = new_user("long")
        for i in range(40):
            async with http.post(f"{node.url}/api/v1/notifications", headers=PRODUCER,
                                 json={"recipients": [user], "message": f"m{i}"}) as r:
                assert r.status == 201
        async with http.ws_connect(f"{node.url}{WS}?since=0",
                                   headers={"Authorization": f"Bearer {token(user)}"}) as ws:
            assert (await ws.receive_json())["type"] == "counts"
            async with http.post(f"{node.url}/api/v1/notifications", headers=PRODUCER,
                                 json={"recipients": [user], "message": "live"}) as r:
                assert r.status == 201
            seqs = []
            async with asyncio.timeout(20):
                while len(seqs) < 41:
                    seqs.append((await ws.receive_json())["notification"]["seq"])
            assert seqs == list(range(1, 42))
