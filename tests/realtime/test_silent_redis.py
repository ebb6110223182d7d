"""A Redis connection that goes silent (no reset: the peer or a middlebox lost it) must not
stall a node's live delivery for good: the node's blocking inbox read gives up on it, reads
again on a new connection, and the socket gets what was published meanwhile."""

from __future__ import annotations

import asyncio
import dataclasses

from tidings.embedded import free_port, start_redis, stop_process

from fakes.tcp_proxy import TcpProxy
from helpers import PRODUCER, new_user, serve_node, token


async def test_a_silent_redis_connection_does_not_stall_live_delivery(settings, http, tmp_path):
    port = free_port()
    proc, _ = start_redis(tmp_path, port, persist=False)
    proxy = TcpProxy(lambda: asyncio.open_connection("127.0.0.1", port))
    await proxy.start()
    url = f"redis://127.0.0.1:{proxy.port}/0"
    try:
        async with serve_node(dataclasses.replace(settings, redis_url=url)) as node:
            user = new_user("silent")
            ws_url = node.url.replace("http://", "ws://") + "/ws/me/notifications"
            async with http.ws_connect(ws_url, heartbeat=None,
                                       headers={"Authorization": f"Bearer {token(user)}"}) as ws:
                assert (await ws.receive_json(timeout=10))["type"] == "counts"
                proxy.freeze()  # the node's inbox read now waits on a black hole
                async with http.post(f"{node.url}/api/v1/notifications", headers=PRODUCER,
                                     json={"recipients": [user], "message": "hello"}) as r:
                    assert r.status == 201, await r.text()
                async with asyncio.timeout(20):
                    while (frame := await ws.receive_json())["type"] != "notification":
                        pass
                assert frame["notification"]["seq"] == 1
    finally:
        await proxy.stop()
        stop_process(proc)
