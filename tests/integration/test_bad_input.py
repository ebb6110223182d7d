"""Bad input gets a clear error body and changes nothing in the database."""

from __future__ import annotations

import time

import jwt
import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import rsa

from helpers import API_KEY, JWT_SECRET, PRODUCER, db_state, new_user, token, user_headers

OWNER = new_user("owner")
JSON = {"Content-Type": "application/json"}


@pytest.fixture(scope="module")
async def seeded(node, http_module):
    async with http_module.post(f"{node.url}/api/v1/notifications", headers=PRODUCER,
                                json={"recipients": [OWNER], "message": "seed"}) as r:
        assert r.status == 201
        return (await r.json())["notifications"][0]["uid"]


@pytest.fixture(scope="module")
async def http_module():
    from aiohttp import ClientSession

    async with ClientSession() as s:
        yield s


def _b(s: str) -> bytes:
    return s.encode()


BAD_PRODUCER = [
    ("malformed json", _b('{"recipients": ["a"], "message": '), 400, "invalid_json"),
    ("not an object", _b('["a"]'), 400, "invalid_request"),
    ("wrong type", _b('{"recipients": "a", "message": "x"}'), 400, "invalid_request"),
    ("missing message", _b('{"recipients": ["a"]}'), 400, "invalid_request"),
    ("unknown field", _b('{"recipients": ["a"], "message": "x", "urgent": 1}'), 400,
     "invalid_request"),
    ("too many recipients",
     _b('{"recipients": [%s], "message": "x"}' % ",".join(f'"r{i}"' for i in range(10001))),
     400, "invalid_request"),
    ("message too long", _b('{"recipients": ["a"], "message": "%s"}' % ("m" * 4001)), 400,
     "invalid_request"),
    ("data too large", _b('{"recipients": ["a"], "message": "x", "data": {"k": "%s"}}'
                          % ("d" * 20000)), 413, "data_too_large"),
    ("body over the cap", _b('{"recipients": ["a"], "message": "x", "data": {"k": "%s"}}'
                             % ("d" * (1024 * 1024 + 10))), 413, "payload_too_large"),
    ("NUL in text", _b('{"recipients": ["a"], "message": "x\\u0000"}'), 400, "nul_character"),
    ("NUL in data", _b('{"recipients": ["a"], "message": "x", "data": {"k": "\\u0000"}}'),
     400, "nul_character"),
    ("bad push policy", _b('{"recipients": ["a"], "message": "x", "push": {"when": "soon"}}'),
     400, "invalid_request"),
]


@pytest.mark.parametrize(("name", "body", "status", "code"), BAD_PRODUCER,
                         ids=[b[0] for b in BAD_PRODUCER])
async def test_bad_publish_bodies(node, http, pool, name, body, status, code):
    before = await db_state(pool)
    async with http.post(f"{node.url}/api/v1/notifications", data=body,
                         headers={**PRODUCER, **JSON}) as r:
        assert r.status == status
        answer = await r.json()
    assert answer["error"]["code"] == code and answer["error"]["message"]
    assert await db_state(pool) == before


async def test_bad_patch_bodies(node, http, pool, seeded):
    cases = [
        (b'{"action_choice": "MARK_AS_READ", "notification_uids": [', 400),
        (b'{"action_choice": "EXPLODE", "notification_uids": []}', 400),
        (b'{"action_choice": "MARK_AS_READ", "notification_uids": ["not-a-uuid"]}', 400),
        (b'{"action_choice": "MARK_AS_READ", "notification_uids": "%s"}' % seeded.encode(), 400),
        (b'{"action_choice": "MARK_AS_READ"}', 400),
        (b'{"action_choice": "MARK_AS_REMOVED", "notification_uids": []}', 400),
        (b'{"notification_uids": ["%s"]}' % seeded.encode(), 400),
        (('{"action_choice": "MARK_AS_READ", "notification_uids": [%s]}' % ",".join(
            [f'"{seeded}"'] * 1001)).encode(), 400),
    ]
    before = await db_state(pool)
    for body, status in cases:
        async with http.patch(f"{node.url}/api/v1/me/notifications", data=body,
                              headers={**user_headers(OWNER), **JSON}) as r:
            assert r.status == status, body[:80]
            assert "error" in await r.json()
    assert await db_state(pool) == before


async def test_bad_queries(node, http):
    for query in ("page=0", "page_size=1000", "is_read=perhaps", "before=abc", "page=x"):
        async with http.get(f"{node.url}/api/v1/me/notifications?{query}",
                            headers=user_headers(OWNER)) as r:
            assert r.status == 400, query
            assert (await r.json())["error"]["code"] == "invalid_request"


def _rsa_token(sub: str) -> str:
    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    pem = key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                            serialization.NoEncryption())
    return jwt.encode({"sub": sub, "exp": int(time.time()) + 60}, pem, algorithm="RS256")


def _none_token(sub: str) -> str:
    return jwt.encode({"sub": sub, "exp": int(time.time()) + 60}, None, algorithm="none")


BAD_TOKENS = [
    ("missing", None, "unauthorized"),
    ("garbage", "not.a.jwt", "invalid_token"),
    ("expired", token(OWNER, ttl=-120), "token_expired"),
    ("wrong secret", jwt.encode({"sub": OWNER, "exp": int(time.time()) + 60}, "y" * 40,
                                algorithm="HS256"), "invalid_token"),
    ("alg none", _none_token(OWNER), "invalid_token"),
    ("RS256 not allowed", _rsa_token(OWNER), "invalid_token"),
    ("no sub", jwt.encode({"exp": int(time.time()) + 60}, JWT_SECRET, algorithm="HS256"),
     "invalid_token"),
    ("no exp", jwt.encode({"sub": OWNER}, JWT_SECRET, algorithm="HS256"), "invalid_token"),
    ("not yet valid", jwt.encode({"sub": OWNER, "exp": int(time.time()) + 600,
                                  "nbf": int(time.time()) + 300}, JWT_SECRET, algorithm="HS256"),
     "invalid_token"),
    ("api key as user token", API_KEY, "invalid_token"),
]


@pytest.mark.parametrize(("name", "bad", "code"), BAD_TOKENS, ids=[b[0] for b in BAD_TOKENS])
async def test_bad_user_tokens(node, http, pool, seeded, name, bad, code):
    headers = {"Authorization": f"Bearer {bad}"} if bad else {}
    before = await db_state(pool)
    async with http.get(f"{node.url}/api/v1/me/notifications", headers=headers) as r:
        assert r.status == 401
        assert (await r.json())["error"]["code"] == code
    async with http.patch(f"{node.url}/api/v1/me/notifications", headers=headers,
                          json={"action_choice": "REMOVED_ALL"}) as r:
        assert r.status == 401
    assert await db_state(pool) == before


async def test_bad_api_keys(node, http, pool):
    before = await db_state(pool)
    body = {"recipients": ["x"], "message": "x"}
    for headers in ({}, {"Authorization": "Bearer wrong"}, {"Authorization": API_KEY},
                    {"Authorization": f"Bearer {token('someone')}"}):
        async with http.post(f"{node.url}/api/v1/notifications", json=body,
                             headers=headers) as r:
            assert r.status == 401
            assert (await r.json())["error"]["code"] in ("unauthorized", "invalid_api_key")
    assert await db_state(pool) == before


async def test_unknown_route_and_method_are_json(node, http):
    async with http.get(f"{node.url}/api/v1/nothing") as r:
        assert r.status == 404 and (await r.json())["error"]["code"] == "not_found"
    async with http.delete(f"{node.url}/api/v1/notifications", headers=PRODUCER) as r:
        assert r.status == 405 and (await r.json())["error"]["code"] == "method_not_allowed"
