"""Bad input gets a clear error body and changes nothing in the database."""

from __future__ import annotations

import asyncio
import base64
import hashlib
import hmac
import time
from dataclasses import replace

import jwt
import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import rsa

from helpers import (
    API_KEY,
    JWT_SECRET,
    PRODUCER,
    db_state,
    new_user,
    serve_node,
    settled_state,
    token,
    user_headers,
)

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
    # An APNs collapse id is a header of at most 64 bytes (BadCollapseId otherwise, and the
    # push is never sent); 64 characters of UTF-8 can be 256 bytes.
    ("collapse id over 64 bytes", _b('{"recipients": ["a"], "message": "x", "push":'
                                     ' {"collapse_id": "%s"}}' % ("\u00e9" * 64)),
     400, "invalid_request"),
    ("control character in collapse id", _b('{"recipients": ["a"], "message": "x", "push":'
                                            ' {"collapse_id": "a\\nb"}}'), 400,
     "invalid_request"),
]


@pytest.mark.parametrize(("name", "body", "status", "code"), BAD_PRODUCER,
                         ids=[b[0] for b in BAD_PRODUCER])
async def test_bad_publish_bodies(node, http, pool, name, body, status, code):
    before = await settled_state(node, pool)
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
    before = await settled_state(node, pool)
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
    before = await settled_state(node, pool)
    async with http.get(f"{node.url}/api/v1/me/notifications", headers=headers) as r:
        assert r.status == 401
        assert (await r.json())["error"]["code"] == code
    async with http.patch(f"{node.url}/api/v1/me/notifications", headers=headers,
                          json={"action_choice": "REMOVED_ALL"}) as r:
        assert r.status == 401
    assert await db_state(pool) == before


async def test_bad_api_keys(node, http, pool):
    before = await settled_state(node, pool)
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


# Issue 12, HTTP side: each hostile input is a 4xx with a code, never a 500.

def _nested(depth: int) -> str:
    return "[" * depth + "1" + "]" * depth


HOSTILE_PUBLISH = [
    ("deep data", '"data": {"k": %s}' % _nested(300), "too_deep"),
    ("deep changed_data", '"changed_data": %s' % _nested(40), "too_deep"),
    ("deep custom_info", '"custom_info": {"a": %s}' % _nested(254), "too_deep"),
    ("deep push.extra", '"push": {"extra": {"k": %s}}' % _nested(100), "too_deep"),
    ("1000 levels", '"data": {"k": %s}' % _nested(1000), "too_deep"),
    ("100000 levels", '"data": {"k": %s}' % _nested(100_000), "too_deep"),
    ("int beyond 64 bits in data", '"data": {"k": %d}' % 2**64, "number_out_of_range"),
    ("int beyond 64 bits in changed_data", '"changed_data": [%d]' % -(2**70),
     "number_out_of_range"),
    ("int beyond 64 bits in custom_info", '"custom_info": {"n": 1%s}' % ("0" * 40),
     "number_out_of_range"),
    ("int beyond 64 bits in push.extra", '"push": {"extra": {"k": %d}}' % 2**63,
     "number_out_of_range"),
    ("recipient with a newline", '"recipients": ["a\\nb"]', "invalid_user_id"),
    ("recipient with a trailing newline", '"recipients": ["ab\\n"]', "invalid_user_id"),
]


@pytest.mark.parametrize(("name", "field", "code"), HOSTILE_PUBLISH,
                         ids=[h[0] for h in HOSTILE_PUBLISH])
async def test_hostile_publish_bodies(node, http, pool, name, field, code):
    fields = {"recipients": '"recipients": ["a"]', "message": '"message": "x"'}
    key = "recipients" if field.startswith('"recipients"') else field
    fields[key] = field
    body = ("{" + ", ".join(fields.values()) + "}").encode()
    before = await settled_state(node, pool)
    async with http.post(f"{node.url}/api/v1/notifications", data=body,
                         headers={**PRODUCER, **JSON}) as r:
        assert r.status == 400, await r.text()
        assert (await r.json())["error"]["code"] == code
    assert await db_state(pool) == before


@pytest.mark.parametrize("key", ["from", "message_type", "google.c.a.e", "gcm.n.e", "GoogleX",
                                 "uid", "seq", "type", "data", "aps"])
async def test_push_extra_keys_that_the_payload_owns_are_refused(node, http, pool, key):
    """FCM refuses a message whose data holds a reserved key (``from``, ``message_type``,
    ``google``/``gcm``-prefixed: 400 INVALID_ARGUMENT, so the push is never sent), and the
    keys the payloads carry themselves (the notification's uid, seq, type, data; APNs' aps)
    would be overwritten by the producer's: both are a 400 at publish time."""
    before = await db_state(pool)
    body = {"recipients": ["a"], "message": "x", "push": {"when": "always", "extra": {key: "v"}}}
    async with http.post(f"{node.url}/api/v1/notifications", json=body,
                         headers=PRODUCER) as r:
        assert r.status == 400, await r.text()
        assert (await r.json())["error"]["code"] == "reserved_extra_key"
    assert await db_state(pool) == before


async def test_push_extra_counts_in_the_16_kib(node, http, pool):
    before = await settled_state(node, pool)
    body = {"recipients": ["a"], "message": "x", "data": {"k": "d" * 9000},
            "push": {"when": "always", "extra": {"k": "e" * 9000}}}
    async with http.post(f"{node.url}/api/v1/notifications", json=body,
                         headers=PRODUCER) as r:
        assert r.status == 413 and (await r.json())["error"]["code"] == "data_too_large"
    assert await db_state(pool) == before


@pytest.mark.parametrize("query", ["before=9223372036854775808", "before=1" + "0" * 30,
                                   "is_read=null", "before=null", "page=1000001",
                                   "before=1&before=2", "is_read=yes"])
async def test_hostile_queries(node, http, query):
    async with http.get(f"{node.url}/api/v1/me/notifications?{query}",
                        headers=user_headers(OWNER)) as r:
        assert r.status == 400, query
        assert (await r.json())["error"]["code"] == "invalid_request"


@pytest.mark.parametrize("path", ["%00", "%00abc", "a%0Ab", "%20", "x" * 5000,
                                  "ab%00" + "ab" * 40])
async def test_device_paths_that_are_no_token_are_404(node, http, pool, path):
    before = await settled_state(node, pool)
    url = f"{node.url}/api/v1/me/devices/{path}"
    for method in ("GET", "PUT", "DELETE"):
        async with http.request(method, url, headers=user_headers(OWNER),
                                json={"name": "x"}) as r:
            assert r.status == 404, (method, path)
            assert (await r.json())["error"]["code"] == "not_found"
    assert await db_state(pool) == before


def _signed(payload: bytes) -> str:
    """An HS256 token over these exact claim bytes, validly signed with the server's secret."""
    def b64(data: bytes) -> bytes:
        return base64.urlsafe_b64encode(data).rstrip(b"=")

    head = b64(b'{"alg":"HS256","typ":"JWT"}') + b"." + b64(payload)
    sig = b64(hmac.new(JWT_SECRET.encode(), head, hashlib.sha256).digest())
    return (head + b"." + sig).decode()


_EXP = int(time.time()) + 600
SIGNED_BAD_CLAIMS = [
    ("sub with NUL", b'{"sub": "a\\u0000b", "exp": %d}' % _EXP),
    ("sub with a newline", b'{"sub": "a\\nb", "exp": %d}' % _EXP),
    ("sub with a control char", b'{"sub": "a\\u0001", "exp": %d}' % _EXP),
    ("sub not a string", b'{"sub": 42, "exp": %d}' % _EXP),
    ("sub empty", b'{"sub": "", "exp": %d}' % _EXP),
    ("sub too long", b'{"sub": "%s", "exp": %d}' % (b"u" * 256, _EXP)),
    ("exp a string", b'{"sub": "alice", "exp": "%d"}' % _EXP),
    ("exp a word", b'{"sub": "alice", "exp": "soon"}'),
    ("exp huge", b'{"sub": "alice", "exp": 1%s}' % (b"0" * 400)),
    ("exp true", b'{"sub": "alice", "exp": true}'),
    ("iat a string", b'{"sub": "alice", "exp": %d, "iat": "1"}' % _EXP),
    ("nbf a string", b'{"sub": "alice", "exp": %d, "nbf": "1"}' % _EXP),
]


@pytest.mark.parametrize(("name", "claims"), SIGNED_BAD_CLAIMS,
                         ids=[c[0] for c in SIGNED_BAD_CLAIMS])
async def test_signed_tokens_with_bad_claims_are_401(node, http, name, claims):
    headers = {"Authorization": f"Bearer {_signed(claims)}"}
    async with http.get(f"{node.url}/api/v1/me/notifications", headers=headers) as r:
        assert r.status == 401, await r.text()
        # exp: true reads as 1 (1970) to the JWT library: expired, also a 401
        assert (await r.json())["error"]["code"] in ("invalid_token", "token_expired")
    ok = _signed(b'{"sub": "alice", "exp": %d}' % _EXP)
    async with http.get(f"{node.url}/api/v1/me/devices",
                        headers={"Authorization": f"Bearer {ok}"}) as r:
        assert r.status == 200, "the same signing with good claims is accepted"


@pytest.mark.parametrize("user", ["a\nb", "a\u0000b", "\u0085", "", "u" * 256])
async def test_minted_tokens_follow_the_user_id_rule(node, http, user):
    async with http.post(f"{node.url}/api/v1/tokens", headers=PRODUCER,
                         json={"user": user}) as r:
        assert r.status == 400
        assert (await r.json())["error"]["code"] in ("invalid_user_id", "invalid_request",
                                                     "nul_character")


async def test_content_type_is_json_or_absent(node, http, pool, seeded):
    before = await settled_state(node, pool)
    body = b'{"recipients": ["a"], "message": "x"}'
    for ctype in ("text/plain", "application/x-www-form-urlencoded", "multipart/form-data",
                  "application/octet-stream", "application/xml"):
        async with http.post(f"{node.url}/api/v1/notifications", data=body,
                             headers={**PRODUCER, "Content-Type": ctype}) as r:
            assert r.status == 415, ctype
            assert (await r.json())["error"]["code"] == "unsupported_media_type"
        async with http.patch(f"{node.url}/api/v1/me/notifications",
                              data=b'{"action_choice": "MARK_ALL_AS_READ"}',
                              headers={**user_headers(OWNER), "Content-Type": ctype}) as r:
            assert r.status == 415
    assert await db_state(pool) == before
    for ctype in ("application/json", "application/json; charset=utf-8",
                  "application/merge-patch+json"):
        async with http.post(f"{node.url}/api/v1/notifications", data=body,
                             headers={**PRODUCER, "Content-Type": ctype}) as r:
            assert r.status == 201, ctype
    # no Content-Type at all (aiohttp adds one for bytes; a raw request sends none)
    reader, writer = await asyncio.open_connection(*node.url[7:].split(":"))
    writer.write(b"POST /api/v1/notifications HTTP/1.1\r\nHost: x\r\n"
                 b"Authorization: Bearer %s\r\nContent-Length: %d\r\nConnection: close\r\n\r\n%s"
                 % (API_KEY.encode(), len(body), body))
    answer = await reader.read()
    writer.close()
    assert answer.startswith(b"HTTP/1.1 201"), answer[:200]


async def test_429_says_the_retry_after_seconds(settings, http):
    async with serve_node(replace(settings, rate_limit_user=0.5)) as limited:
        greedy = user_headers(new_user("greedy"))
        for _ in range(20):
            async with http.get(f"{limited.url}/api/v1/me/devices", headers=greedy) as r:
                if r.status == 429:
                    seconds = r.headers["Retry-After"]
                    message = (await r.json())["error"]["message"]
                    break
        else:
            pytest.fail("never limited")
    assert int(seconds) >= 1 and message == f"too many requests; retry in {seconds} s"


#: A text field checked by a pattern, with a value that breaks it only by a final newline
#: (a regex ``$`` may match before one): (method, path, who, body).
TRAILING_NEWLINE = [
    ("put", "/api/v1/users/{user}", "producer", {"email": "a@example.com\n"}),
    ("put", "/api/v1/users/{user}", "producer", {"locale": "fr-FR\n"}),
    ("post", "/api/v1/notifications", "producer",
     {"recipients": ["{user}"], "message": "m", "push": {"collapse_id": "news\n"}}),
    ("patch", "/api/v1/me/preferences", "user",
     {"quiet_hours": {"start": "22:00\n", "end": "07:00"}}),
    ("get", "/api/v1/admin/types/{user}/subscribers?after=a%0A", "admin", None),
]


@pytest.mark.parametrize(("method", "path", "who", "body"), TRAILING_NEWLINE)
async def test_a_pattern_does_not_let_a_final_newline_through(node, http, pool, method, path,
                                                              who, body):
    from helpers import ADMIN

    user = new_user("nl")
    headers = {"producer": PRODUCER, "user": user_headers(user), "admin": ADMIN}[who]
    if who == "admin":  # a declared type, so the query is what is judged
        async with http.put(f"{node.url}/api/v1/types/{user}", headers=PRODUCER,
                            json={"title": "T"}) as r:
            assert r.status == 201
    before = await settled_state(node, pool)
    profiles = await pool.fetchval("SELECT count(*) FROM tidings_profiles")
    raw = None if body is None else _b(str(body).replace("'", '"').replace("\n", "\\n")
                                       .replace("{user}", user))
    async with http.request(method, node.url + path.replace("{user}", user), data=raw,
                            headers={**headers, **JSON}) as r:
        assert r.status == 400, await r.text()
        assert (await r.json())["error"]["code"] == "invalid_request"
    assert await settled_state(node, pool) == before
    assert await pool.fetchval("SELECT count(*) FROM tidings_profiles") == profiles
