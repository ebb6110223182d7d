"""Device registration per user, with per-platform token checks and isolation."""

from __future__ import annotations

import secrets

import pytest

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


@pytest.mark.parametrize("platform", ["apns", "fcm"])
async def test_taking_over_a_token_discloses_nothing_of_the_previous_owner(
        node, http, pool, platform):
    victim, taker = new_user("victim"), new_user("taker")
    tok = apns_token() if platform == "apns" else fcm_token()
    url = f"{node.url}/api/v1/me/devices"
    async with http.post(url, headers=user_headers(victim), json={
            "token": tok, "platform": platform, "name": "Victim's phone",
            "app_id": "com.victim.secret"}) as r:
        assert r.status == 201
        first = await r.json()
    async with http.post(url, headers=user_headers(taker),
                         json={"token": tok, "platform": platform}) as r:
        assert r.status == 201
        taken = await r.json()
    assert taken["name"] is None and taken["app_id"] is None, taken
    assert taken["created_at"] > first["created_at"], "a new device, not the victim's"
    stored = await pool.fetchrow("SELECT user_id, name, app_id, created_at FROM tidings_devices"
                                 " WHERE platform = $1 AND token = $2", platform, tok)
    assert stored["user_id"] == taker and stored["name"] is None and stored["app_id"] is None
    async with http.get(f"{url}/{tok}", headers=user_headers(taker)) as r:
        assert await r.json() == taken
    async with http.get(url, headers=user_headers(victim)) as r:
        assert (await r.json())["devices"] == []
    # the new owner's own re-registration keeps what they set, as before
    async with http.post(url, headers=user_headers(taker), json={
            "token": tok, "platform": platform, "name": "Mine"}) as r:
        assert r.status == 200
    async with http.post(url, headers=user_headers(taker),
                         json={"token": tok, "platform": platform}) as r:
        assert r.status == 200
        again = await r.json()
    assert again["name"] == "Mine" and again["created_at"] == taken["created_at"]
