"""Redis stops and starts mid-stream: connected sockets lose nothing and get nothing twice."""

from __future__ import annotations

import asyncio

from tidings.client import Subscriber
from tidings.embedded import free_port, start_redis, stop_process

from helpers import PRODUCER, new_user, token


async def test_redis_restart_mid_stream(nodes, http, tmp_path):
    port = free_port()
    redis_proc, url = start_redis(tmp_path, port, persist=False)
    try:
        a = await nodes.start(redis_url=url)
        b = await nodes.start(redis_url=url)
        user = new_user("restart")
        sub = Subscriber(a.url, token(user))
        got: list[dict] = []

        async def collect():
            async for message in sub:
                got.append(message)

        task = asyncio.create_task(collect())
        async with asyncio.timeout(10):
            while not got:
                await asyncio.sleep(0.02)
        total = 90
        for i in range(total):
            if i == 30:
                stop_process(redis_proc)
            if i == 60:
                redis_proc, _ = start_redis(tmp_path, port, persist=False)
            async with http.post(f"{b.url}/api/v1/notifications", headers=PRODUCER,
                                 json={"recipients": [user], "message": f"n{i}"}) as r:
                assert r.status == 201, "stored and acknowledged whatever Redis does"
            await asyncio.sleep(0.02)

        def seqs():
            return [m["notification"]["seq"] for m in got if m["type"] == "notification"]

        async with asyncio.timeout(30):
            while len(seqs()) < total:
                await asyncio.sleep(0.05)
        await asyncio.sleep(3)  # the relay's grace: a late duplicate would show now
        assert seqs() == list(range(1, total + 1))
        assert sub.connects == 1, "the socket stayed connected throughout"
        await sub.close()
        task.cancel()
    finally:
        stop_process(redis_proc)
