"""A socket after its upgrade is a lean protocol object, not an aiohttp handler: raw clients
check the wire (bytes sent with the request, fragments, pings, closes) and what it holds."""

from __future__ import annotations

import asyncio
import os
from dataclasses import replace

import orjson
import pytest

from tidings.gateway.ws import HUB

from helpers import PRODUCER, eventually, new_user, serve_node, token


def client_frame(opcode: int, payload: bytes, *, fin: bool = True) -> bytes:
    mask = os.urandom(4)
    n = len(payload)
    head = bytes(((0x80 if fin else 0) | opcode, 0x80 | n)) if n < 126 else \
        bytes(((0x80 if fin else 0) | opcode, 0x80 | 126)) + n.to_bytes(2, "big")
    return head + mask + bytes(b ^ mask[i % 4] for i, b in enumerate(payload))


def text(message: dict) -> bytes:
    return client_frame(0x1, orjson.dumps(message))


def upgrade(port: int, *headers: str) -> bytes:
    lines = ["GET /ws/me/notifications HTTP/1.1", f"Host: 127.0.0.1:{port}",
             "Upgrade: websocket", "Connection: Upgrade", "Sec-WebSocket-Version: 13",
             "Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==", *headers]
    return ("\r\n".join(lines) + "\r\n\r\n").encode()


class Raw:
    """A WebSocket client on a bare stream: it writes what it is told and reads frames."""

    def __init__(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter):
        self.reader, self.writer = reader, writer

    @classmethod
    async def open(cls, url: str, first: bytes) -> Raw:
        host, port = url.removeprefix("http://").split(":")
        reader, writer = await asyncio.open_connection(host, int(port))
        writer.write(first)
        raw = cls(reader, writer)
        head = await asyncio.wait_for(reader.readuntil(b"\r\n\r\n"), 10)
        assert head.startswith(b"HTTP/1.1 101 "), head
        return raw

    async def frame(self) -> tuple[int, bytes]:
        first, second = await asyncio.wait_for(self.reader.readexactly(2), 10)
        n = second & 0x7F
        if n == 126:
            n = int.from_bytes(await self.reader.readexactly(2), "big")
        elif n == 127:
            n = int.from_bytes(await self.reader.readexactly(8), "big")
        assert not second & 0x80, "server frames are not masked"
        return first & 0x0F, await self.reader.readexactly(n)

    async def json(self) -> dict:
        opcode, data = await self.frame()
        assert opcode == 0x1, (opcode, data)
        return orjson.loads(data)

    async def closed_with(self) -> int:
        """The code of the server's close frame; the server then ends the connection."""
        while True:
            opcode, data = await self.frame()
            if opcode == 0x8:
                self.writer.write(client_frame(0x8, data))
                assert await asyncio.wait_for(self.reader.read(), 10) == b""
                return int.from_bytes(data[:2], "big")

    def close(self) -> None:
        self.writer.close()


def port_of(node) -> int:
    return int(node.url.rsplit(":", 1)[1])


async def test_frames_sent_with_the_request_are_read(node):
    """A client may send its auth message (and more) in the same write as its upgrade."""
    user = new_user("eager")
    first = (upgrade(port_of(node)) + text({"type": "auth", "token": token(user)})
             + client_frame(0x9, b"are you there") + text({"type": "ack", "seq": 0}))
    raw = await Raw.open(node.url, first)
    assert (await raw.json())["type"] == "counts"
    assert await raw.frame() == (0xA, b"are you there")
    raw.close()


async def test_a_fragmented_message_with_a_ping_inside_is_one_message(node):
    user = new_user("frag")
    raw = await Raw.open(node.url, upgrade(port_of(node), f"Authorization: Bearer {token(user)}"))
    assert (await raw.json())["type"] == "counts"
    body = orjson.dumps({"type": "refresh", "token": token(user, 900)})
    third = len(body) // 3
    raw.writer.write(client_frame(0x1, body[:third], fin=False) + client_frame(0x9, b"p")
                     + client_frame(0x0, body[third:2 * third], fin=False)
                     + client_frame(0x0, body[2 * third:]))
    assert await raw.frame() == (0xA, b"p")
    assert (await raw.json())["type"] == "refreshed"
    raw.close()


async def test_a_close_from_the_client_is_answered_with_its_code(node):
    raw = await Raw.open(node.url, upgrade(port_of(node),
                                           f"Authorization: Bearer {token(new_user())}"))
    await raw.json()
    raw.writer.write(client_frame(0x8, (4321).to_bytes(2, "big") + b"bye"))
    opcode, data = await raw.frame()
    assert opcode == 0x8 and int.from_bytes(data[:2], "big") == 4321
    assert await asyncio.wait_for(raw.reader.read(), 10) == b""


@pytest.mark.parametrize(("frame", "code"), [
    (b"\x81\x02hi", 1002),  # not masked
    (client_frame(0x1, b"{}", fin=True)[:1] + b"\x80" + b"\x00" * 4, 1007),  # empty text
    (client_frame(0x3, b"?"), 1002),  # an opcode with no meaning
    (client_frame(0x0, b"more"), 1002),  # continues nothing
])
async def test_protocol_faults_close_with_their_code(node, frame, code):
    raw = await Raw.open(node.url, upgrade(port_of(node),
                                           f"Authorization: Bearer {token(new_user())}"))
    await raw.json()
    raw.writer.write(frame)
    assert await raw.closed_with() == code


async def test_a_refused_socket_gets_the_answer_and_the_close_in_one_go(node):
    raw = await Raw.open(node.url, upgrade(port_of(node), "Authorization: Bearer no.such.token"))
    assert await raw.closed_with() == 4001


async def test_idle_sockets_hold_no_task_and_are_no_longer_aiohttps(settings):
    async with serve_node(replace(settings, ws_heartbeat=3600.0)) as node:
        hub = node.app[HUB]
        before = len(asyncio.all_tasks())
        raws = [await Raw.open(node.url, upgrade(port_of(node),
                                                 f"Authorization: Bearer {token(new_user())}"))
                for _ in range(30)]
        for raw in raws:
            assert (await raw.json())["type"] == "counts"
        assert len(list(hub.rooms.sockets())) == 30
        assert len(asyncio.all_tasks()) - before < 5, "a task per socket"
        assert not node.runner.server.connections, "aiohttp still holds the sockets"
        for raw in raws:
            raw.writer.write(client_frame(0x8, (1000).to_bytes(2, "big")))
        for raw in raws:
            assert (await raw.frame())[0] == 0x8
            assert await asyncio.wait_for(raw.reader.read(), 10) == b""
        await eventually(lambda: not list(hub.rooms.sockets()), within=10)


async def test_joins_of_one_moment_each_get_their_own_users_counts(node, http):
    """Joins that arrive together share one state read; each socket gets its user's counts."""
    users = [new_user(f"batch{i}") for i in range(6)]
    for i, user in enumerate(users):
        for n in range(i):
            async with http.post(f"{node.url}/api/v1/notifications", headers=PRODUCER,
                                 json={"recipients": [user], "message": f"m{n}"}) as r:
                assert r.status == 201
    joining = [*users, users[3], users[5]]  # two users with a second socket
    raws = await asyncio.gather(*(
        Raw.open(node.url, upgrade(port_of(node), f"Authorization: Bearer {token(u)}"))
        for u in joining))
    for user, raw in zip(joining, raws, strict=True):
        counts = await raw.json()
        assert counts["type"] == "counts"
        assert counts["total_notifications"] == users.index(user), user
        raw.close()
