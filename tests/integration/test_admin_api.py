"""The operator's console API on a real node: admin keys, bad input, each endpoint's answers.

Dead letters made by the fake APNs, their requeue and discard, and the push apps'
figures are in tests/push/test_admin_dead_letters.py.
"""

from __future__ import annotations

import hashlib
import hmac
from dataclasses import replace

import pytest

from tidings.api import admin_auth
from tidings.core.errors import AuthError, NotFound, TidingsError
from tidings.services.context import SERVICES

from helpers import (
    ADMIN,
    ADMIN_KEY,
    API_KEY,
    PRODUCER,
    Socket,
    eventually,
    new_user,
    serve_node,
    token,
)

ADMIN_ROUTES = [
    ("post", "/api/v1/admin/notifications", {"recipients": ["x"], "message": "m"}),
    ("get", "/api/v1/admin/user?id=x", None),
    ("get", "/api/v1/admin/types", None),
    ("post", "/api/v1/admin/types/x/notifications", {"message": "m"}),
    ("get", "/api/v1/admin/types/x/subscribers", None),
    ("get", "/api/v1/admin/notifications/00000000-0000-0000-0000-000000000000/deliveries",
     None),
    ("get", "/api/v1/admin/dead-letters", None),
    ("post", "/api/v1/admin/dead-letters/requeue", {"ids": [1]}),
    ("post", "/api/v1/admin/dead-letters/discard", {"ids": [1]}),
    ("get", "/api/v1/admin/push-apps", None),
    ("get", "/api/v1/admin/nodes", None),
    ("get", "/api/v1/admin/audit", None),
]


async def audit_rows(pool) -> list:
    return await pool.fetch("SELECT * FROM tidings_admin_audit ORDER BY id")


async def call(http, node, method, path, body=None, headers=None):
    async with http.request(method, node.url + path, json=body, headers=headers) as r:
        return r.status, await r.json()


@pytest.mark.parametrize(("method", "path", "body"), ADMIN_ROUTES)
async def test_every_admin_route_needs_an_admin_key(node, http, pool, method, path, body):
    before = await audit_rows(pool)
    user_jwt = {"Authorization": f"Bearer {token('someone')}"}
    status, answer = await call(http, node, method, path, body)
    assert (status, answer["error"]["code"]) == (401, "unauthorized")
    for wrong in ({"Authorization": f"Bearer {ADMIN_KEY}x"}, PRODUCER, user_jwt,
                  {"Authorization": f"Bearer {ADMIN_KEY[:-1]}"}):
        status, answer = await call(http, node, method, path, body, wrong)
        assert (status, answer["error"]["code"]) == (403, "invalid_admin_key"), wrong
    assert await audit_rows(pool) == before


async def test_the_console_is_off_without_admin_keys(settings, http):
    async with serve_node(replace(settings, admin_keys=())) as off:
        async with http.get(f"{off.url}/admin") as r:
            assert r.status == 404
        for method, path, body in ADMIN_ROUTES:
            status, answer = await call(http, off, method, path, body, ADMIN)
            assert (status, answer["error"]["code"]) == (404, "not_found"), path


async def test_the_page_is_served_with_the_key(node, http):
    async with http.get(f"{node.url}/admin") as r:
        assert r.status == 200
        assert r.headers["Content-Type"].startswith("text/html")
        assert "frame-ancestors 'none'" in r.headers["Content-Security-Policy"]
        page = await r.text()
    assert "sessionStorage" in page and "/api/v1/admin/" in page


def test_admin_keys_are_compared_in_constant_time(monkeypatch):
    """Every configured key is compared, with hmac.compare_digest, whichever matches."""
    keys = ("k" * 20, "m" * 20, "n" * 20)
    compared: list[bytes] = []
    real = hmac.compare_digest

    def spy(a, b):
        compared.append(b)
        return real(a, b)

    monkeypatch.setattr(admin_auth.hmac, "compare_digest", spy)
    for presented in (keys[0], keys[2], "nope"):
        compared.clear()
        try:
            admin_auth.check_admin_key(presented, keys)
        except TidingsError as exc:
            assert exc.status == 403 and presented == "nope"
        assert compared == [k.encode() for k in keys]
    assert admin_auth.check_admin_key(keys[1], keys) == (
        "key-" + hashlib.sha256(keys[1].encode()).hexdigest()[:12])
    with pytest.raises(AuthError):
        admin_auth.check_admin_key("", keys)
    with pytest.raises(NotFound):
        admin_auth.check_admin_key(keys[0], ())


async def test_send_reaches_a_socket_and_is_audited(node, http, pool):
    user = new_user("adm")
    sock = Socket(node.url, user)
    try:
        await sock.until(lambda m: m)
        status, answer = await call(http, node, "post", "/api/v1/admin/notifications", {
            "recipients": [user], "title": "Maintenance", "message": "Back at 10:00",
            "push": {"when": "always"}}, ADMIN)
        assert status == 201 and answer["created"] == 1
        [sent] = answer["notifications"]
        await sock.until(lambda m: any(x["type"] == "notification" for x in m))
        got = next(x for x in sock.messages if x["type"] == "notification")
        assert got["notification"]["uid"] == sent["uid"]
        assert got["notification"]["title"] == "Maintenance"
    finally:
        await sock.close()

    [row] = [r for r in await audit_rows(pool) if r["target"] == user]
    assert row["action"] == "send" and row["admin"] == admin_auth.key_id(ADMIN_KEY)
    assert row["detail"]["recipients"] == [user] and row["detail"]["push"] == "always"
    every = " ".join(str(tuple(r.values())) for r in await audit_rows(pool))
    assert ADMIN_KEY not in every and API_KEY not in every

    status, log = await call(http, node, "get", "/api/v1/admin/audit?limit=1", None, ADMIN)
    assert status == 200 and log["items"][0]["id"] == row["id"]
    assert log["items"][0]["admin"] == row["admin"] and log["next_before"] == row["id"]


async def test_a_send_the_publish_refuses_is_audited_as_refused(node, http, pool):
    """The idempotency key decides only once the publish starts, after the audit row: a
    409 leaves a row that says the send was refused, not one that reads as a send."""
    user, key = new_user("adm409"), new_user("key")
    body = {"recipients": [user], "message": "first", "idempotency_key": key}
    status, _ = await call(http, node, "post", "/api/v1/admin/notifications", body, ADMIN)
    assert status == 201
    status, answer = await call(http, node, "post", "/api/v1/admin/notifications",
                                {**body, "message": "second"}, ADMIN)
    assert (status, answer["error"]["code"]) == (409, "idempotency_key_reused")
    first, second = [r for r in await audit_rows(pool) if r["target"] == user]
    assert "refused" not in first["detail"]
    assert second["detail"]["message"] == "second"
    assert second["detail"]["refused"] == "idempotency_key_reused"
    assert await pool.fetchval("SELECT count(*) FROM tidings_notifications WHERE user_id = $1",
                               user) == 1


@pytest.mark.parametrize(("method", "path", "body"), [
    ("post", "/api/v1/admin/notifications", {"recipients": [], "message": "m"}),
    ("post", "/api/v1/admin/notifications", {"recipients": ["a"], "message": ""}),
    ("post", "/api/v1/admin/notifications", {"recipients": ["a"], "message": "m", "x": 1}),
    ("post", "/api/v1/admin/notifications",
     {"recipients": ["a"], "message": "m", "push": {"when": "unread_after"}}),
    ("post", "/api/v1/admin/notifications", {"recipients": ["a\u0001"], "message": "m"}),
    ("post", "/api/v1/admin/dead-letters/requeue", {"ids": []}),
    ("post", "/api/v1/admin/dead-letters/requeue", {"ids": ["1"]}),
    ("post", "/api/v1/admin/dead-letters/requeue", {"ids": [0]}),
    ("post", "/api/v1/admin/dead-letters/discard", {"ids": [1], "all": True}),
    ("post", "/api/v1/admin/dead-letters/discard", {"ids": list(range(1, 1002))}),
    ("get", "/api/v1/admin/user", None),
    ("get", "/api/v1/admin/user?id=", None),
    ("get", "/api/v1/admin/user?id=a%0A", None),
    ("get", "/api/v1/admin/user?id=a&id=b", None),
    ("get", "/api/v1/admin/dead-letters?limit=0", None),
    ("get", "/api/v1/admin/dead-letters?limit=101", None),
    ("get", "/api/v1/admin/audit?before=abc", None),
    ("get", "/api/v1/admin/audit?before=0", None),
])
async def test_bad_input_is_a_clear_400_and_changes_nothing(node, http, pool, method, path,
                                                              body):
    before = (await audit_rows(pool),
              await pool.fetchval("SELECT count(*) FROM tidings_notifications"))
    status, answer = await call(http, node, method, path, body, ADMIN)
    assert status == 400, answer
    assert answer["error"]["code"] in ("invalid_request", "invalid_user_id")
    assert answer["error"]["message"]
    after = (await audit_rows(pool),
             await pool.fetchval("SELECT count(*) FROM tidings_notifications"))
    assert after == before


async def test_a_body_that_is_not_json_is_refused(node, http):
    async with http.post(f"{node.url}/api/v1/admin/dead-letters/requeue", data=b"{",
                         headers={**ADMIN, "Content-Type": "application/json"}) as r:
        assert r.status == 400 and (await r.json())["error"]["code"] == "invalid_json"


async def test_user_lookup_deliveries_and_nodes(node, http, pool):
    user = new_user("look")
    headers = {"Authorization": f"Bearer {token(user)}"}
    async with http.post(f"{node.url}/api/v1/me/devices", headers=headers,
                         json={"platform": "fcm", "token": "f" * 40, "name": "Pixel"}) as r:
        assert r.status in (200, 201)
    sock = Socket(node.url, user)
    try:
        await sock.until(lambda m: m)
        uids = []
        for i in range(3):
            async with http.post(f"{node.url}/api/v1/notifications", headers=PRODUCER,
                                 json={"recipients": [user], "message": f"n{i}"}) as r:
                uids.append((await r.json())["notifications"][0]["uid"])
        await sock.until(lambda m: sum(x["type"] == "notification" for x in m) == 3)

        status, found = await call(http, node, "get", f"/api/v1/admin/user?id={user}", None,
                                   ADMIN)
        assert status == 200 and found["user"] == user
        assert found["counts"] == {"total_notifications": 3, "read_notifications": 0,
                                   "unread_notifications": 3, "last_seq": 3}
        assert [n["uid"] for n in found["notifications"]] == uids[::-1]
        [device] = found["devices"]
        assert (device["platform"], device["name"], device["active"]) == ("fcm", "Pixel", True)
        assert device["last_error"] is None and device["last_push_at"] is None
        assert found["sockets"] == [{"node": node.app[SERVICES].node_id}]

        async def logged():
            status, log = await call(
                http, node, "get", f"/api/v1/admin/notifications/{uids[0]}/deliveries", None,
                ADMIN)
            return status == 200 and [(d["channel"], d["outcome"]) for d in
                                      log["deliveries"]] == [("socket", "delivered")]
        await eventually(logged)

        async def counted():
            status, answer = await call(http, node, "get", "/api/v1/admin/nodes", None, ADMIN)
            me = node.app[SERVICES].node_id
            return status == 200 and any(
                n["node"] == me and n["live"] and n["sockets"] >= 1 and n["users"] >= 1
                and n["deliveries_total"] >= 3 for n in answer["nodes"])
        await eventually(counted)
    finally:
        await sock.close()

    status, nobody = await call(http, node, "get", "/api/v1/admin/user?id=" + new_user(), None,
                                ADMIN)
    assert status == 200 and nobody["counts"]["total_notifications"] == 0
    assert nobody["notifications"] == nobody["devices"] == nobody["sockets"] == []
    status, missing = await call(
        http, node, "get", "/api/v1/admin/notifications/not-a-uid/deliveries", None, ADMIN)
    assert (status, missing["error"]["code"]) == (404, "not_found")


async def test_audit_pages_newest_first(node, http, pool):
    for i in range(3):
        status, _ = await call(http, node, "post", "/api/v1/admin/notifications",
                               {"recipients": [new_user("page")], "message": f"p{i}"}, ADMIN)
        assert status == 201
    status, first = await call(http, node, "get", "/api/v1/admin/audit?limit=2", None, ADMIN)
    ids = [e["id"] for e in first["items"]]
    assert status == 200 and ids == sorted(ids, reverse=True) and len(ids) == 2
    status, second = await call(
        http, node, "get", f"/api/v1/admin/audit?limit=2&before={first['next_before']}", None,
        ADMIN)
    assert status == 200 and second["items"][0]["id"] < ids[-1]
