"""Hostile requests on a real node: bytes no key holds in the Authorization header, and
the same idempotency key sent twice at once with a large publish."""

from __future__ import annotations

import asyncio
import uuid
from urllib.parse import urlsplit

import pytest

from helpers import ADMIN_KEY, API_KEY, PRODUCER, new_user


async def raw_status(node, method: str, path: str, auth: bytes) -> int:
    """The status of a request whose Authorization value is ``auth`` as sent (any bytes)."""
    url = urlsplit(node.url)
    reader, writer = await asyncio.open_connection(url.hostname, url.port)
    try:
        writer.write(method.encode() + b" " + path.encode() + b" HTTP/1.1\r\nHost: x\r\n"
                     b"Authorization: " + auth + b"\r\nContent-Length: 0\r\n"
                     b"Connection: close\r\n\r\n")
        await writer.drain()
        line = await reader.readline()
        return int(line.split()[1])
    finally:
        writer.close()


@pytest.mark.parametrize(("path", "key"), [("/api/v1/types", API_KEY),
                                           ("/api/v1/admin/nodes", ADMIN_KEY)])
@pytest.mark.parametrize("junk", [b"\xff\xfe", "\u00e9".encode()])
async def test_a_key_with_bytes_no_key_holds_is_refused_not_a_server_error(node, path, key,
                                                                          junk):
    status = await raw_status(node, "GET", path, b"Bearer " + key.encode() + junk)
    assert status in (401, 403), status


async def test_one_key_twice_at_once_on_a_large_publish_stores_it_once(node, http, pool):
    users = [new_user("big") for _ in range(3000)]
    key = f"k-{uuid.uuid4()}"
    body = {"recipients": [*users, users[0]], "message": "hello", "idempotency_key": key}

    async def send():
        async with http.post(f"{node.url}/api/v1/notifications", json=body,
                             headers=PRODUCER) as r:
            return r.status, await r.json()

    answers = await asyncio.gather(send(), send())
    statuses = sorted(s for s, _ in answers)
    assert statuses in ([201, 201], [201, 409]), answers
    stored = await pool.fetchval(
        "SELECT count(*) FROM tidings_notifications WHERE user_id = ANY($1::text[])", users)
    assert stored == len(users)
