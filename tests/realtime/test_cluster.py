"""Several real node processes over one PostgreSQL and Redis: routing, resume, failures."""

from __future__ import annotations

import asyncio
import signal

import aiohttp
import pytest

from helpers import (
    Socket,
    eventually,
    healthy,
    new_user,
    port_free,
    publish,
    read_to_close,
    scrape,
    seqs,
    slow_socket,
    token,
    user_headers,
    value,
)


async def test_tab_and_phone_on_two_nodes_publish_and_read_on_a_third(nodes, http):
    a, b, c = await asyncio.gather(nodes.start(), nodes.start(), nodes.start())
    user = new_user("multi")
    tab = Socket(a.url, user)
    phone = Socket(b.url, user)
    await tab.until(lambda m: m)
    await phone.until(lambda m: m)
    for i in range(5):
        await publish(http, c.url, [user], f"n{i}")
    for sock in (tab, phone):
        await sock.until(lambda m: len(seqs(m)) == 5)
        assert sock.seqs() == [1, 2, 3, 4, 5]
    uid = tab.messages[-1]["notification"]["uid"]
    async with http.patch(f"{c.url}/api/v1/me/notifications", headers=user_headers(user),
                          json={"action_choice": "MARK_AS_READ",
                                "notification_uids": [uid]}) as r:
        assert r.status == 200
    for sock in (tab, phone):
        await sock.until(lambda m: m[-1]["type"] == "counts")
        assert sock.last("counts")["unread_notifications"] == 4
    await tab.close()
    await phone.close()


async def test_reconnect_storm_while_publishing_sees_each_seq_once_in_order(nodes, http):
    a, b = await asyncio.gather(nodes.start(), nodes.start())
    user = new_user("storm")
    total = 150
    sock = Socket(a.url, user, backoff=0.01, backoff_max=0.05)
    await sock.until(lambda m: m)

    async def producer():
        for i in range(total):
            await publish(http, b.url, [user], f"n{i}")

    async def chaos():
        dropped_at = 0
        while len(sock.seqs()) < total:
            await asyncio.sleep(0.01)
            ws = sock.sub._ws
            if len(sock.seqs()) >= dropped_at + 15 and ws is not None and ws.transport:
                dropped_at = len(sock.seqs())
                ws.transport.abort()  # the network drops, every 15 notifications

    await asyncio.gather(producer(), chaos())
    await sock.until(lambda m: len(seqs(m)) >= total)
    assert sock.seqs() == list(range(1, total + 1))
    assert sock.sub.connects > 5
    await sock.close()


async def test_killed_node_users_resume_on_another_node(nodes, http):
    a, b = await asyncio.gather(nodes.start(), nodes.start())
    user = new_user("kill")
    sock = Socket([a.url, b.url], user, backoff=0.01, backoff_max=0.2)
    await sock.until(lambda m: m)
    for i in range(10):
        await publish(http, b.url, [user], f"before{i}")
    await sock.until(lambda m: len(seqs(m)) == 10)
    await a.stop(signal.SIGKILL)
    for i in range(10):
        await publish(http, b.url, [user], f"after{i}")
    await sock.until(lambda m: len(seqs(m)) == 20)
    assert sock.seqs() == list(range(1, 21))
    assert sock.sub.url.startswith(b.url.replace("http", "ws"))
    await sock.close()


async def test_graceful_shutdown_closes_with_1012_and_leaves_presence(nodes, http, redis):
    from tidings.bus import keys

    a, b = await asyncio.gather(nodes.start(), nodes.start())
    user = new_user("grace")
    async with aiohttp.ClientSession() as s, s.ws_connect(
            a.url + "/ws/me/notifications",
            headers={"Authorization": f"Bearer {token(user)}"}) as ws:
        await ws.receive_json()
        assert await redis.sismember(keys.node_users(a.node_id), user)
        assert await a.stop(signal.SIGTERM) == 0
        msg = await ws.receive()
        assert msg.type == aiohttp.WSMsgType.CLOSE and msg.data == 1012
    assert await redis.zscore(keys.NODES, a.node_id) is None
    assert not await redis.exists(keys.node_users(a.node_id))
    assert await redis.zscore(keys.NODES, b.node_id) is not None


async def test_slow_consumer_is_closed_and_memory_stays_bounded(nodes, http):
    node = await nodes.start(ws_send_queue=32)
    slow_user, fast_user = new_user("slow"), new_user("fast")
    fast = Socket(node.url, fast_user)
    await fast.until(lambda m: m)
    slow = await slow_socket(node.url, slow_user)
    before = node.rss()
    blob = "x" * 16_000
    total = 400  # about 6.5 MB for the slow socket: more than kernel buffers hold
    for i in range(total):
        await publish(http, node.url, [slow_user, fast_user], f"n{i}",
                      data={"blob": blob, "i": i})
    await fast.until(lambda m: len(seqs(m)) == total)
    grown = node.rss() - before
    assert grown < 64 * 1024 * 1024, f"server grew by {grown} bytes"
    code = await read_to_close(slow)
    assert code == 1008
    assert fast.seqs() == list(range(1, total + 1)), "the fast socket was not held back"
    await fast.close()


@pytest.mark.parametrize("workers", [2])
async def test_serve_workers_share_one_port(settings, workers):
    import os
    import subprocess
    import sys
    from dataclasses import replace

    from tidings import config
    from tidings.embedded import free_port

    port = free_port()
    env = {k: v for k, v in os.environ.items() if not k.startswith("TIDINGS_")}
    env.update(config.to_env(replace(settings, port=port, workers=workers)))
    proc = subprocess.Popen([sys.executable, "-m", "tidings", "serve"], env=env,
                            stdout=subprocess.DEVNULL)
    seen: set[str] = set()

    async def all_seen() -> bool:  # each request on a new connection: any process may take it
        seen.add((await healthy(f"http://127.0.0.1:{port}", proc, within=60))["node"])
        return len(seen) >= workers

    try:
        await eventually(all_seen, within=60, every=0)
        assert len(seen) == workers
    finally:
        proc.send_signal(signal.SIGINT)
        assert await asyncio.to_thread(proc.wait, 30) == 0


async def test_each_serve_worker_serves_its_own_metrics_port(settings):
    """``serve --workers 2 --metrics-port P``: process i answers on P+i, for its own sockets."""
    import os
    import subprocess
    import sys
    from dataclasses import replace

    from tidings import config
    from tidings.embedded import free_port

    port, first = free_port(), free_port()
    while port in (first, first + 1) or not port_free(first + 1):  # both metrics ports free
        first = free_port()
    env = {k: v for k, v in os.environ.items() if not k.startswith("TIDINGS_")}
    env.update(config.to_env(replace(settings, port=port, workers=2, metrics_port=first)))
    proc = subprocess.Popen([sys.executable, "-m", "tidings", "serve"], env=env,
                            stdout=subprocess.DEVNULL)

    async def counts(http: aiohttp.ClientSession, check) -> list[float | None]:
        """Each process's open sockets, once both answer and ``check`` holds for them."""
        async def both() -> list[float | None] | None:
            try:
                got = [value((await scrape(http, f"http://127.0.0.1:{first + i}",
                                           headers={}))[1], "tidings_sockets_open")
                       for i in range(2)]
            except aiohttp.ClientError:
                return None
            return got if check(got) else None
        return await eventually(both, within=60)

    try:
        async with aiohttp.ClientSession() as http:
            opened = []
            assert await counts(http, lambda _: True) == [0, 0]
            async with asyncio.timeout(60):
                for _ in range(6):
                    ws = await http.ws_connect(f"ws://127.0.0.1:{port}/ws/me/notifications",
                                               headers={"Authorization":
                                                        f"Bearer {token(new_user('w'))}"})
                    assert (await ws.receive_json())["type"] == "counts"
                    opened.append(ws)
            await counts(http, lambda got: sum(got) == 6)
            for ws in opened:
                await ws.close()
    finally:
        proc.send_signal(signal.SIGINT)
        assert await asyncio.to_thread(proc.wait, 30) == 0
