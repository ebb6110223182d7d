"""Redis stops and starts mid-stream: connected sockets lose nothing and get nothing twice."""

from __future__ import annotations

import asyncio

from tidings.embedded import free_port, start_redis, stop_process

from helpers import Socket, eventually, new_user, publish, seqs


async def test_redis_restart_mid_stream(nodes, http, pool, tmp_path):
    port = free_port()
    redis_proc, url = start_redis(tmp_path, port, persist=False)
    try:
        a = await nodes.start(redis_url=url)
        b = await nodes.start(redis_url=url)
        user = new_user("restart")
        sock = Socket(a.url, user)
        await sock.until(lambda m: m, within=10)
        total = 90
        for i in range(total):
            if i == 30:
                stop_process(redis_proc)
            if i == 60:
                redis_proc, _ = start_redis(tmp_path, port, persist=False)
            # stored and acknowledged whatever Redis does
            await publish(http, b.url, [user], f"n{i}")
            await asyncio.sleep(0.02)  # paces the publishes across the outage

        await sock.until(lambda m: len(seqs(m)) >= total)

        async def relayed() -> bool:  # nothing of the user's left for the relay to send again
            return not await pool.fetchval(
                "SELECT count(*) FROM tidings_outbox WHERE notification_ids && (SELECT"
                " array_agg(id) FROM tidings_notifications WHERE user_id = $1)", user)
        await eventually(relayed, within=30)
        await publish(http, b.url, [user], "last")  # a late duplicate would come before it
        await sock.until(lambda m: total + 1 in seqs(m))
        assert sock.seqs() == list(range(1, total + 2))
        assert sock.sub.connects == 1, "the socket stayed connected throughout"
        await sock.close()
    finally:
        stop_process(redis_proc)
