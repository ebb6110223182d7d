"""Device registration per user, with per-platform token checks and isolation."""

from __future__ import annotations

import secrets

from helpers import db_state, new_user, user_headers


def apns_token() -> str:
    return secrets.token_hex(32)


def fcm_token() -> str:
    return "fcm:" + secrets.token_urlsafe(120)


async def test_register_get_update_delete(node, http):
    user = new_user()
    h = user_headers(user)
    url = f"{node.url}/api/v1/me/devices"
    tok = apns_token()
    async with http.post(url, headers=h, json={"token": tok, "platform": "apns",
                                               "name": "iPhone"}) as r:
        assert r.status == 201
        body = await r.json()
        assert body["active"] is True and body["name"] == "iPhone" and body["platform"] == "apns"
    async with http.put(f"{url}/{tok}", headers=h, json={"active": False}) as r:
        assert r.status == 200 and (await r.json())["active"] is False
    async with http.post(url, headers=h, json={"token": tok, "platform": "apns"}) as r:
        assert r.status == 200, "existing: 200, and active again"
        body = await r.json()
        assert body["active"] is True and body["name"] == "iPhone"
    ftok = fcm_token()
    async with http.post(url, headers=h, json={"token": ftok, "platform": "fcm",
                                               "app_id": "com.example"}) as r:
        assert r.status == 201
    async with http.get(url, headers=h) as r:
        assert {d["token"] for d in (await r.json())["devices"]} == {tok, ftok}
    async with http.get(f"{url}/{ftok}", headers=h) as r:
        assert r.status == 200 and (await r.json())["app_id"] == "com.example"
    async with http.delete(f"{url}/{tok}", headers=h) as r:
        assert r.status == 204
    async with http.get(f"{url}/{tok}", headers=h) as r:
        assert r.status == 404
    async with http.delete(f"{url}/{tok}", headers=h) as r:
        assert r.status == 404


async def test_bad_device_bodies_change_nothing(node, http, pool):
    h = user_headers(new_user())
    url = f"{node.url}/api/v1/me/devices"
    before = await db_state(pool)
    for body in ({"token": "zz", "platform": "apns"}, {"token": apns_token(), "platform": "sms"},
                 {"token": "short", "platform": "fcm"}, {"platform": "fcm"},
                 {"token": 123, "platform": "fcm"}, {"token": apns_token(), "platform": "apns",
                                                     "color": "red"}):
        async with http.post(url, headers=h, json=body) as r:
            assert r.status == 400, body
            assert (await r.json())["error"]["message"]
    async with http.post(url, headers={**h, "Content-Type": "application/json"},
                         data=b"{nope") as r:
        assert r.status == 400
    assert await db_state(pool) == before


async def test_other_users_devices_are_not_revealed(node, http, pool):
    alice, mallory = new_user("alice"), new_user("mallory")
    tok = apns_token()
    url = f"{node.url}/api/v1/me/devices"
    async with http.post(url, headers=user_headers(alice),
                         json={"token": tok, "platform": "apns"}) as r:
        assert r.status == 201
    before = await db_state(pool)
    mh = user_headers(mallory)
    async with http.get(f"{url}/{tok}", headers=mh) as r:
        assert r.status == 404
    async with http.put(f"{url}/{tok}", headers=mh, json={"active": False}) as r:
        assert r.status == 404
    async with http.delete(f"{url}/{tok}", headers=mh) as r:
        assert r.status == 404
    async with http.get(url, headers=mh) as r:
        assert (await r.json())["devices"] == []
    assert await db_state(pool) == before
    # the phone logs in as another user: the token moves to that user
    async with http.post(url, headers=mh, json={"token": tok, "platform": "apns"}) as r:
        assert r.status == 201
    async with http.get(f"{url}/{tok}", headers=user_headers(alice)) as r:
        assert r.status == 404
