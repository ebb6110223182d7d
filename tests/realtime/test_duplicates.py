"""The duplicate-delivery bug, reproduced with real node processes: each seq once, in order.

Seq 1 is routed nowhere (the user is briefly out of node A's presence), then
node A is stopped while seqs 2 and 3 land on its inbox stream, so that both
come back in one read: two events past a gap in the same batch. The socket
must get 1, 2, 3 (it used to get 1, 2, 1, 2, 3: one gap fill per event).
"""

from __future__ import annotations

import asyncio
import os
import signal

import psutil

from tidings.bus import keys

from helpers import eventually, new_user, publish, token


async def redis_clients(redis) -> dict[int, str]:
    """Client source port -> its flags, for every connection Redis holds."""
    out = {}
    for client in await redis.client_list():
        out[int(client["addr"].rsplit(":", 1)[1])] = client["flags"]
    return out


def ports_to(pid: int, port: int) -> set[int]:
    """Local ports of a process's TCP connections to ``port`` on this machine."""
    return {c.laddr.port for c in psutil.Process(pid).net_connections("tcp")
            if c.raddr and c.raddr.port == port}


async def test_two_events_past_a_gap_in_one_read_are_sent_once_in_order(nodes, http, redis):
    a, b = await asyncio.gather(nodes.start(), nodes.start())
    user = new_user("dup")
    # a raw socket: the bundled clients drop what they already yielded, hiding duplicates
    ws = await http.ws_connect(a.url + "/ws/me/notifications",
                               headers={"Authorization": f"Bearer {token(user)}"})
    seqs: list[int] = []

    async def until(check) -> None:
        async with asyncio.timeout(20):
            while not check():
                message = await ws.receive_json()
                if message["type"] == "notification":
                    seqs.append(message["notification"]["seq"])

    assert (await ws.receive_json())["type"] == "counts"

    users_key = keys.node_users(a.node_id)
    await redis.srem(users_key, user)
    await publish(http, b.url, [user], "routed nowhere")  # seq 1
    await redis.sadd(users_key, user)

    redis_port = redis.connection_pool.connection_kwargs["port"]
    a_ports = ports_to(a.proc.pid, redis_port)
    assert a_ports
    loop = asyncio.get_running_loop()
    stopped_at = loop.time()
    os.kill(a.proc.pid, signal.SIGSTOP)
    try:
        # node A's blocking XREAD must time out on the Redis side first: then seqs 2 and 3
        # both wait in the stream and A's next read takes them together
        async def unblocked() -> bool:
            return not any("b" in flags for port, flags in (await redis_clients(redis)).items()
                           if port in a_ports)
        await eventually(unblocked, within=10)
        await publish(http, b.url, [user], "two")  # seq 2
        await publish(http, b.url, [user], "three")  # seq 3
        assert await redis.xlen(keys.node_inbox(a.node_id)) >= 2
        # the point: node A stays stopped past its read's BLOCK (1 s)
        await asyncio.sleep(max(0.0, stopped_at + 1.3 - loop.time()))
    finally:
        os.kill(a.proc.pid, signal.SIGCONT)

    await until(lambda: len(seqs) >= 3)
    await publish(http, b.url, [user], "four")  # a late duplicate would come before it
    await until(lambda: 4 in seqs)
    assert seqs == [1, 2, 3, 4]
    await ws.close()
