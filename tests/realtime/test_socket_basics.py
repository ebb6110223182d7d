"""One node in this process: the socket's auth modes, messages and replay."""

from __future__ import annotations

import asyncio

import orjson
from websockets.asyncio.client import connect

from tidings.client import Subscriber, socket_url

from helpers import new_user, publish, token


async def take(sub_iter, n, wait=10.0):
    out = []
    async with asyncio.timeout(wait):
        while len(out) < n:
            out.append(await anext(sub_iter))
    return out


async def test_header_auth_counts_then_live_notification(node, http):
    user = new_user()
    await publish(http, node.url, [user], "before")
    sub = Subscriber(node.url, token(user))
    it = aiter(sub)
    (counts,) = await take(it, 1)
    assert counts == {"type": "counts", "total_notifications": 1, "read_notifications": 0,
                      "unread_notifications": 1}
    await publish(http, node.url, [user], "live", title="T", data={"k": 1})
    (msg,) = await take(it, 1)
    assert msg["type"] == "notification" and msg["unread_notifications"] == 2
    n = msg["notification"]
    assert n["seq"] == 2 and n["notification"]["message"] == "live" and n["data"] == {"k": 1}
    assert n["user"] == {"id": user} and n["is_read"] is False
    await sub.close()


async def test_subprotocol_auth_echoes_token(node):
    user = new_user()
    tok = token(user)
    async with connect(socket_url(node.url), subprotocols=[tok]) as ws:
        assert ws.subprotocol == tok
        assert orjson.loads(await ws.recv())["type"] == "counts"


async def test_first_message_auth_and_replay(node, http):
    user = new_user()
    for i in range(5):
        await publish(http, node.url, [user], f"m{i}")
    async with connect(socket_url(node.url)) as ws:
        await ws.send(orjson.dumps({"type": "auth", "token": token(user), "since": 2}).decode())
        msgs = [orjson.loads(await ws.recv()) for _ in range(4)]
    assert msgs[0]["type"] == "counts" and msgs[0]["total_notifications"] == 5
    assert [m["notification"]["seq"] for m in msgs[1:]] == [3, 4, 5]


async def test_reset_when_too_much_was_missed(node, http):
    user = new_user()
    await publish(http, node.url, [user], "one")
    async with connect(socket_url(node.url) + "?since=999",
                       additional_headers={"Authorization": f"Bearer {token(user)}"}) as ws:
        msgs = [orjson.loads(await ws.recv()) for _ in range(2)]
    assert [m["type"] for m in msgs] == ["counts", "reset"] and msgs[1]["seq"] == 1


async def test_mark_read_on_socket_updates_counts_everywhere(node, http):
    user = new_user()
    body = await publish(http, node.url, [user], "read me")
    uid = body["notifications"][0]["uid"]
    phone, tab = Subscriber(node.url, token(user)), Subscriber(node.url, token(user))
    pit, tit = aiter(phone), aiter(tab)
    await take(pit, 1)
    await take(tit, 1)
    await phone.mark_read([uid])
    (on_phone,), (on_tab,) = await take(pit, 1), await take(tit, 1)
    assert on_phone["type"] == on_tab["type"] == "counts"
    assert on_tab["unread_notifications"] == 0 and on_tab["read_notifications"] == 1
    await phone.close()
    await tab.close()


async def test_live_only_and_broadcast(node, http):
    users = [new_user("bc") for _ in range(50)]
    subs = [Subscriber(node.url, token(u)) for u in users]
    its = [aiter(s) for s in subs]
    await asyncio.gather(*(take(it, 1) for it in its))
    await publish(http, node.url, users, "to all", expect=(201, 202), persist=False)
    got = await asyncio.gather(*(take(it, 1) for it in its))
    for (msg,), user in zip(got, users, strict=True):
        assert msg["notification"]["seq"] is None
        assert msg["notification"]["user"]["id"] == user
        assert "total_notifications" not in msg
    for s in subs:
        await s.close()
