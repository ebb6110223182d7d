"""Notification types, users' profiles and preferences over HTTP, on a real node."""

from __future__ import annotations

import uuid

import pytest

from helpers import PRODUCER, db_state, new_user, user_headers


def type_name() -> str:
    return f"t-{uuid.uuid4().hex[:8]}"


COMMENT = {"title": "Comments", "channels": {"push": True, "email": False},
           "push": {"when": "always", "sound": "ping"},
           "templates": {"push": {"title": "{{ created_by }} commented",
                                  "body": "{{ data.post }}: {{ message }}"}}}


async def put_type(http, node, name, definition):
    async with http.put(f"{node.url}/api/v1/types/{name}", headers=PRODUCER,
                        json=definition) as r:
        return r.status, await r.json()


async def test_a_type_is_created_replaced_listed_and_removed(http, node):
    name = type_name()
    status, doc = await put_type(http, node, name, COMMENT)
    assert status == 201
    assert doc["name"] == name and doc["title"] == "Comments"
    assert doc["channels"] == {"push": True, "email": False} and doc["required"] is False
    assert doc["push"] == {"when": "always", "sound": "ping"} and doc["digest"] is None
    status, doc = await put_type(http, node, name, {**COMMENT, "title": "Replies"})
    assert (status, doc["title"]) == (200, "Replies")
    async with http.get(f"{node.url}/api/v1/types/{name}", headers=PRODUCER) as r:
        assert r.status == 200 and (await r.json())["title"] == "Replies"
    async with http.get(f"{node.url}/api/v1/types", headers=PRODUCER) as r:
        assert name in [t["name"] for t in (await r.json())["types"]]
    async with http.delete(f"{node.url}/api/v1/types/{name}", headers=PRODUCER) as r:
        assert r.status == 204
    async with http.get(f"{node.url}/api/v1/types/{name}", headers=PRODUCER) as r:
        assert r.status == 404
    async with http.delete(f"{node.url}/api/v1/types/{name}", headers=PRODUCER) as r:
        assert r.status == 404


@pytest.mark.parametrize(("field", "source", "says"), [
    ("body", "{{ message ", "TemplateSyntaxError"),
    ("body", "{{ mesage }}", "unknown name 'mesage'"),
    ("title", "{{ message.__class__ }}", "SecurityError"),
    ("title", "{% for x in 1 %}{% endfor %}", "TypeError"),
    ("digest_body", "{{ message }}", "unknown name 'message'"),
])
async def test_a_template_error_is_refused_at_save(http, node, pool, field, source, says):
    name = type_name()
    before = await pool.fetch("SELECT * FROM tidings_types ORDER BY name")
    status, body = await put_type(http, node, name, {
        "title": "Broken", "templates": {"push": {field: source}}})
    assert status == 400, body
    assert body["error"]["code"] == "invalid_template"
    assert f"templates.push.{field}" in body["error"]["message"]
    assert says in body["error"]["message"]
    assert await pool.fetch("SELECT * FROM tidings_types ORDER BY name") == before


async def test_type_rules_between_fields_and_names(http, node):
    status, body = await put_type(http, node, "bad name", COMMENT)
    assert (status, body["error"]["code"]) == (400, "invalid_type_name")
    status, body = await put_type(http, node, type_name(), {
        "title": "X", "push": {"when": "unread_after"}})
    assert status == 400 and "push.after" in body["error"]["message"]
    status, body = await put_type(http, node, type_name(),
                                  {"title": "X", "channels": {"sms": True}})
    assert status == 400
    async with http.get(f"{node.url}/api/v1/types/{type_name()}", headers=user_headers("u")) as r:
        assert r.status == 401


async def test_a_profile_is_saved_with_a_known_timezone(http, node, pool):
    user = new_user()
    url = f"{node.url}/api/v1/users/{user}"
    async with http.put(url, headers=PRODUCER, json={
            "email": "ada@example.com", "name": "Ada", "locale": "en-GB",
            "timezone": "Europe/London"}) as r:
        assert r.status == 201, await r.text()
        doc = await r.json()
    assert doc["user_id"] == user and doc["timezone"] == "Europe/London"
    assert doc["email_status"] == "ok" and doc["email_bounce"] is None
    before = await db_state(pool), await pool.fetch("SELECT * FROM tidings_profiles ORDER BY 1")
    async with http.put(url, headers=PRODUCER, json={"timezone": "Mars/Olympus"}) as r:
        assert r.status == 400 and (await r.json())["error"]["code"] == "invalid_timezone"
    assert (await db_state(pool), await pool.fetch(
        "SELECT * FROM tidings_profiles ORDER BY 1")) == before
    async with http.put(url, headers=PRODUCER, json={"email": "ada@example.com",
                                                     "timezone": "Asia/Tokyo"}) as r:
        assert r.status == 200 and (await r.json())["name"] is None  # PUT replaces
    async with http.get(url, headers=PRODUCER) as r:
        assert (await r.json())["timezone"] == "Asia/Tokyo"
    async with http.delete(url, headers=PRODUCER) as r:
        assert r.status == 204
    async with http.get(url, headers=PRODUCER) as r:
        assert r.status == 404


async def test_preferences_merge_the_types_defaults_with_the_users_choices(http, node):
    comment, alert = type_name(), type_name()
    await put_type(http, node, comment, COMMENT)
    await put_type(http, node, alert, {"title": "Security", "required": True,
                                       "channels": {"push": True, "email": True}})
    user = new_user()
    url = f"{node.url}/api/v1/me/preferences"
    async with http.get(url, headers=user_headers(user)) as r:
        doc = await r.json()
    assert doc["channels"] == {"push": True, "email": True, "web_push": True}
    assert doc["types"][comment] == {"title": "Comments", "required": False,
                                     "channels": {"push": True, "email": False}, "digest": None}
    assert doc["types"][alert]["required"] is True
    assert doc["quiet_hours"] is None and doc["version"] == 0

    async with http.patch(url, headers=user_headers(user), json={
            "types": {comment: {"channels": {"email": True, "push": False}}},
            "quiet_hours": {"start": "22:00", "end": "07:00"}}) as r:
        assert r.status == 200, await r.text()
        doc = await r.json()
    assert doc["types"][comment]["channels"] == {"push": False, "email": True}
    assert doc["quiet_hours"] == {"start": "22:00", "end": "07:00"} and doc["version"] == 1

    async with http.patch(url, headers=user_headers(user), json={"channels": {"push": False}}
                          ) as r:
        doc = await r.json()
    assert doc["channels"]["push"] is False
    assert doc["types"][alert]["channels"] == {"push": True, "email": True}  # required
    assert doc["types"][comment]["channels"]["email"] is True  # untouched
    async with http.patch(url, headers=user_headers(user), json={"quiet_hours": None}) as r:
        assert (await r.json())["quiet_hours"] is None
    async with http.get(url, headers=user_headers(new_user())) as r:  # another user's own
        assert (await r.json())["types"][comment]["channels"]["push"] is True


async def test_a_required_type_cannot_be_turned_off(http, node, pool):
    alert = type_name()
    await put_type(http, node, alert, {"title": "Security", "required": True,
                                       "channels": {"push": True, "email": False}})
    user = new_user()
    url = f"{node.url}/api/v1/me/preferences"
    before = await pool.fetch("SELECT * FROM tidings_preferences WHERE user_id = $1", user)
    async with http.patch(url, headers=user_headers(user), json={
            "channels": {"email": False},
            "types": {alert: {"channels": {"push": False}}}}) as r:
        assert r.status == 400
        err = (await r.json())["error"]
    assert err["code"] == "required_type" and f"types.{alert}.channels.push" in err["message"]
    assert await pool.fetch("SELECT * FROM tidings_preferences WHERE user_id = $1",
                            user) == before  # the whole PATCH refused
    async with http.patch(url, headers=user_headers(user), json={  # off by default: opt in
            "types": {alert: {"channels": {"email": True}}}}) as r:
        assert r.status == 200
        assert (await r.json())["types"][alert]["channels"] == {"push": True, "email": True}
    async with http.patch(url, headers=user_headers(user), json={
            "types": {alert: {"channels": {"web_push": True}}}}) as r:
        assert (r.status, (await r.json())["error"]["code"]) == (400, "invalid_preferences")
    async with http.patch(url, headers=user_headers(user), json={
            "types": {type_name(): {"channels": {"push": True}}}}) as r:
        assert (r.status, (await r.json())["error"]["code"]) == (404, "unknown_type")
    async with http.patch(url, headers=PRODUCER, json={}) as r:
        assert r.status == 401
