"""Socket rules: auth failures and expiry, refresh, origins, the socket cap, bad frames."""

from __future__ import annotations

import asyncio
import time
from dataclasses import replace

import aiohttp
import pytest

from helpers import PRODUCER, eventually, new_user, serve_node, token

WS = "/ws/me/notifications"


@pytest.fixture(scope="module")
async def strict_node(settings):
    s = replace(settings, ws_auth_timeout=0.5, max_sockets_per_user=2, ws_max_frame=1024)
    async with serve_node(s) as node:
        yield node


async def closed_with(ws: aiohttp.ClientWebSocketResponse, within: float = 10.0) -> int | None:
    """Read until the server closes; the close code."""
    async with asyncio.timeout(within):
        while True:
            msg = await ws.receive()
            if msg.type in (aiohttp.WSMsgType.CLOSE, aiohttp.WSMsgType.CLOSED):
                return ws.close_code


def bearer(user: str, ttl: int = 600) -> dict[str, str]:
    return {"Authorization": f"Bearer {token(user, ttl)}"}


@pytest.mark.parametrize("headers", [
    {"Authorization": "Bearer nonsense"},
    {"Authorization": f"Bearer {token('x', ttl=-60)}"},
    {"Sec-WebSocket-Protocol": "a.b.c"},
])
async def test_bad_tokens_close_4001(strict_node, http, headers):
    async with http.ws_connect(strict_node.url + WS, headers=headers) as ws:
        assert await closed_with(ws) == 4001


async def test_first_message_auth_must_come_in_time_and_be_auth(strict_node, http):
    async with http.ws_connect(strict_node.url + WS) as ws:
        assert await closed_with(ws) == 4001  # said nothing for 0.5 s
    async with http.ws_connect(strict_node.url + WS) as ws:
        await ws.send_json({"type": "ack", "seq": 1})
        assert await closed_with(ws) == 4001
    async with http.ws_connect(strict_node.url + WS) as ws:
        await ws.send_json({"type": "auth", "token": "bad.to.ken"})
        assert await closed_with(ws) == 4001


async def test_token_expiry_closes_unless_refreshed(strict_node, http):
    user = new_user("exp")
    async with http.ws_connect(strict_node.url + WS, headers=bearer(user, ttl=1)) as ws:
        assert (await ws.receive_json())["type"] == "counts"
        assert await closed_with(ws) == 4001
    issued = time.time()  # a twin socket's token expires with the first one
    first, twin = (f"Bearer {token(u, 1, now=issued)}" for u in (user, new_user("twin")))
    async with http.ws_connect(strict_node.url + WS, headers={"Authorization": first}) as ws, \
            http.ws_connect(strict_node.url + WS, headers={"Authorization": twin}) as other:
        assert (await ws.receive_json())["type"] == "counts"
        await ws.send_json({"type": "refresh", "token": token(user, 600)})
        answer = await ws.receive_json()
        assert answer["type"] == "refreshed" and answer["expires_at"] > 0
        assert await closed_with(other) == 4001  # past the first token's expiry: still open
        async with http.post(f"{strict_node.url}/api/v1/notifications", headers=PRODUCER,
                             json={"recipients": [user], "message": "still here"}) as r:
            assert r.status == 201
        msg = await ws.receive_json(timeout=10)
        assert msg["notification"]["notification"]["message"] == "still here"
    async with http.ws_connect(strict_node.url + WS, headers=bearer(user)) as ws:
        await ws.receive_json()
        await ws.send_json({"type": "refresh", "token": token("someone-else")})
        assert await closed_with(ws) == 4001


async def test_origin_allow_list(strict_node, http):
    user = new_user()
    for origin, allowed in (("http://evil.example", False), ("http://allowed.example", True),
                            (strict_node.url, True)):
        async with http.ws_connect(strict_node.url + WS, origin=origin,
                                   headers=bearer(user)) as ws:
            if allowed:
                assert (await ws.receive_json())["type"] == "counts"
            else:
                assert await closed_with(ws) == 4003


async def test_socket_cap_per_user(strict_node, http):
    user = new_user("cap")
    async with http.ws_connect(strict_node.url + WS, headers=bearer(user)) as one, \
            http.ws_connect(strict_node.url + WS, headers=bearer(user)) as two:
        await one.receive_json()
        await two.receive_json()
        async with http.ws_connect(strict_node.url + WS, headers=bearer(user)) as three:
            assert await closed_with(three) == 4008


@pytest.mark.parametrize(("frame", "code"), [
    ("{not json", 1007),
    ('{"type": "explode"}', 1007),
    ('{"type": "mark_read", "uids": ["not-a-uuid"]}', 1007),
    ('{"type": "auth", "token": "again.and.again"}', 1007),
    (b"binary", 1007),
    ('{"type": "ack", "seq": 1, "pad": "%s"}' % ("x" * 2000), 1009),
])
async def test_bad_frame_closes_only_that_socket(strict_node, http, frame, code):
    user = new_user("frame")
    async with http.ws_connect(strict_node.url + WS, headers=bearer(user)) as bad, \
            http.ws_connect(strict_node.url + WS, headers=bearer(user)) as good:
        await bad.receive_json()
        await good.receive_json()
        if isinstance(frame, bytes):
            await bad.send_bytes(frame)
        else:
            await bad.send_str(frame)
        assert await closed_with(bad) == code
        async with http.post(f"{strict_node.url}/api/v1/notifications", headers=PRODUCER,
                             json={"recipients": [user], "message": "fine"}) as r:
            assert r.status == 201
        msg = await good.receive_json(timeout=10)
        assert msg["notification"]["notification"]["message"] == "fine"


async def test_bad_since_closes_1007(strict_node, http):
    async with http.ws_connect(strict_node.url + WS + "?since=abc",
                               headers=bearer(new_user())) as ws:
        assert await closed_with(ws) == 1007


async def test_dead_peer_is_dropped_by_protocol_pings(settings, http):
    from tidings.gateway.ws import HUB

    async with serve_node(replace(settings, ws_heartbeat=0.3)) as node:
        user = new_user("dead")
        hub = node.app[HUB]
        # autoping off: this client never answers the server's pings, like a vanished peer
        async with http.ws_connect(node.url + WS, headers=bearer(user), autoping=False) as ws:
            await ws.receive_json()
            assert hub.room_size(user) == 1
            await eventually(lambda: not hub.room_size(user), within=15)
        # a live peer answers the pings and stays; its own pings are answered
        alive = new_user("alive")
        async with http.ws_connect(node.url + WS, headers=bearer(alive), autoping=False) as ws:
            await ws.receive_json()
            pings = 0
            loop = asyncio.get_running_loop()
            until = loop.time() + 2  # more than six heartbeat periods
            while loop.time() < until:
                msg = await ws.receive(timeout=2)
                assert msg.type is aiohttp.WSMsgType.PING, msg
                pings += 1
                await ws.pong(msg.data)
            assert pings >= 4 and hub.room_size(alive) == 1
            await ws.ping(b"hi")
            msg = await ws.receive(timeout=2)
            while msg.type is aiohttp.WSMsgType.PING:
                await ws.pong(msg.data)
                msg = await ws.receive(timeout=2)
            assert msg.type is aiohttp.WSMsgType.PONG and msg.data == b"hi"


async def test_a_message_flood_is_refused_then_closed_1008(strict_node, http):
    async with http.ws_connect(strict_node.url + WS, headers=bearer(new_user("flood"))) as ws:
        await ws.receive_json()
        for _ in range(200):
            await ws.send_str('{"type": "ack", "seq": 0}')
        errors = []
        async with asyncio.timeout(10):
            while True:
                msg = await ws.receive()
                if msg.type is not aiohttp.WSMsgType.TEXT:
                    break
                errors.append(msg.json())
        assert ws.close_code == 1008
        assert errors and all(e["type"] == "error" and e["code"] == "rate_limited"
                              for e in errors)
        assert len(errors) <= 60, "refusals are bounded: a second full burst closes"


async def test_mark_read_over_the_uid_cap_is_an_error_frame_and_changes_nothing(node, http):
    import uuid

    user = new_user("cap")
    async with http.post(f"{node.url}/api/v1/notifications", headers=PRODUCER,
                         json={"recipients": [user], "message": "read me"}) as r:
        uid = (await r.json())["notifications"][0]["uid"]
    async with http.ws_connect(node.url + WS, headers=bearer(user)) as ws:
        assert (await ws.receive_json())["unread_notifications"] == 1
        await ws.send_json({"type": "mark_read",
                            "uids": [uid] + [str(uuid.uuid4()) for _ in range(100)]})
        error = await ws.receive_json(timeout=10)
        assert error["type"] == "error" and error["code"] == "too_many_uids"
        await ws.send_json({"type": "mark_read", "uids": [uid]})
        counts = await ws.receive_json(timeout=10)
        assert counts["type"] == "counts" and counts["unread_notifications"] == 0, \
            "the refused message changed nothing; the socket still works"


async def test_binary_first_frame_is_not_an_auth_message(strict_node, http):
    async with http.ws_connect(strict_node.url + WS) as ws:
        await ws.send_bytes(b'{"type": "auth", "token": "%s"}' % token(new_user()).encode())
        assert await closed_with(ws) == 1007


async def test_same_host_origin_is_refused_beyond_loopback(settings, http):
    """DNS rebinding: an origin equal to the Host header is not enough once the server
    listens beyond loopback; the public URL's origin and the allow list are."""
    public = "https://notify.example.com"
    s = replace(settings, host="0.0.0.0", public_url=public)
    user = new_user("origin")
    async with serve_node(s) as node:
        port = node.url.rsplit(":", 1)[1]
        for origin, host, allowed in (
                (node.url, None, False),
                (f"http://rebound.example:{port}", f"rebound.example:{port}", False),
                (public, None, True),
                ("http://allowed.example", None, True)):
            headers = {**bearer(user), **({"Host": host} if host else {})}
            async with http.ws_connect(node.url + WS, origin=origin, headers=headers) as ws:
                if allowed:
                    assert (await ws.receive_json())["type"] == "counts", origin
                else:
                    assert await closed_with(ws) == 4003, origin


async def test_loopback_origins_pass_on_a_loopback_bind_only_those(strict_node, http):
    port = strict_node.url.rsplit(":", 1)[1]
    for origin, allowed in (("http://localhost:5173", True), ("http://[::1]:1", True),
                            (f"http://rebound.example:{port}", False)):
        headers = {**bearer(new_user()), "Host": f"rebound.example:{port}"}
        async with http.ws_connect(strict_node.url + WS, origin=origin, headers=headers) as ws:
            if allowed:
                assert (await ws.receive_json())["type"] == "counts", origin
            else:
                assert await closed_with(ws) == 4003, origin


@pytest.mark.parametrize(("headers", "status", "code"), [
    ({}, 401, "unauthorized"),
    ({"Authorization": "Bearer bad.to.ken"}, 401, None),
    ("valid", 400, "not_a_websocket"),
])
async def test_plain_get_of_the_socket_path_is_a_json_error(strict_node, http, headers,
                                                             status, code):
    if headers == "valid":
        headers = bearer(new_user())
    async with http.get(strict_node.url + WS, headers=headers) as r:
        assert r.status == status and r.content_type == "application/json"
        body = await r.json()
        assert set(body["error"]) == {"code", "message"}
        if code is not None:
            assert body["error"]["code"] == code
