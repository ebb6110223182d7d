"""The console's sends to a type's subscribers, the subscriber lists and the user lookup's
preferences and profile, on a real node.

Every type here is new (a random name), and the users of a test share a random prefix: a
list read ``after`` the prefix starts with exactly the test's own users, whatever else the
database holds.
"""

from __future__ import annotations

import uuid

from tidings.core.admin_schemas import TypeSend
from tidings.services.admin import Admin
from tidings.services.context import SERVICES

from helpers import ADMIN, PRODUCER, Socket, user_headers


async def call(http, node, method, path, body=None, headers=None):
    async with http.request(method, node.url + path, json=body, headers=headers) as r:
        return r.status, await r.json()


async def audit_rows(pool) -> list:
    return await pool.fetch("SELECT * FROM tidings_admin_audit ORDER BY id")


def fresh(prefix: str) -> tuple[str, str]:
    """A type name and a user id prefix, both new."""
    tag = uuid.uuid4().hex[:10]
    return f"{prefix}-{tag}", f"{prefix}{tag}"


async def declare(http, node, name, definition) -> None:
    async with http.put(f"{node.url}/api/v1/types/{name}", headers=PRODUCER,
                        json=definition) as r:
        assert r.status == 201, await r.text()


async def choose(http, node, user, patch) -> None:
    async with http.patch(f"{node.url}/api/v1/me/preferences", headers=user_headers(user),
                          json=patch) as r:
        assert r.status == 200, await r.text()


async def listed(http, node, name, prefix, after=None, limit=100) -> list[str]:
    """The subscribers listed after ``after`` (else ``prefix``) whose ids start with
    ``prefix``."""
    status, page = await call(http, node, "get",
                              f"/api/v1/admin/types/{name}/subscribers?after={after or prefix}"
                              f"&limit={limit}", None, ADMIN)
    assert status == 200, page
    return [u for u in page["items"] if u.startswith(prefix)]


async def notes_of(pool, users) -> dict[str, list[str]]:
    rows = await pool.fetch("SELECT user_id, type FROM tidings_notifications"
                            " WHERE user_id = ANY($1::text[]) ORDER BY id", users)
    found: dict[str, list[str]] = {u: [] for u in users}
    for r in rows:
        found[r[0]].append(r[1])
    return found


async def test_a_send_reaches_the_subscribers_only_and_is_audited(node, http, pool):
    name, p = fresh("optin")
    await declare(http, node, name, {"title": "News", "channels": {"push": False,
                                                                   "email": False}})
    push_on, email_on, turned_off, globally_off, silent = (
        f"{p}-a", f"{p}-b", f"{p}-c", f"{p}-d", f"{p}-e")
    await choose(http, node, push_on, {"types": {name: {"channels": {"push": True}}}})
    await choose(http, node, email_on, {"types": {name: {"channels": {"email": True}}}})
    await choose(http, node, turned_off, {"types": {name: {"channels": {"push": True}}}})
    await choose(http, node, turned_off, {"types": {name: {"channels": {"push": False}}}})
    await choose(http, node, globally_off, {"channels": {"email": False},
                                            "types": {name: {"channels": {"email": True}}}})
    async with http.put(f"{node.url}/api/v1/users/{silent}", headers=PRODUCER,
                        json={"email": "e@example.com"}) as r:
        assert r.status == 201
    everyone = [push_on, email_on, turned_off, globally_off, silent]
    assert await listed(http, node, name, p) == [push_on, email_on]

    sockets = {u: Socket(node.url, u) for u in (push_on, turned_off)}
    try:
        for s in sockets.values():
            await s.until(lambda m: m)
        status, sent = await call(http, node, "post", f"/api/v1/admin/types/{name}/notifications",
                                  {"title": "Release", "message": "Version 2 is out",
                                   "push": {"when": "always"}}, ADMIN)
        assert status == 201, sent
        assert (sent["type"], sent["recipients"], sent["created"], sent["pending"]) == (
            name, 2, 2, 0)
        assert sent["resume_after"] is None
        assert [n["recipient"] for n in sent["notifications"]] == [push_on, email_on]
        await sockets[push_on].until(lambda m: any(x["type"] == "notification" for x in m))
        [got] = [x["notification"] for x in sockets[push_on].messages
                 if x["type"] == "notification"]
        assert (got["type"], got["title"], got["uid"]) == (
            name, "Release", sent["notifications"][0]["uid"])
    finally:
        for s in sockets.values():
            await s.close()
    assert await notes_of(pool, everyone) == {
        push_on: [name], email_on: [name], turned_off: [], globally_off: [], silent: []}

    [row] = [r for r in await audit_rows(pool) if r["target"] == f"subscribers of {name}"]
    assert row["action"] == "send"
    assert row["detail"]["type_subscribers"] == name and row["detail"]["push"] == "always"
    assert row["detail"]["recipient_count"] == 2


async def test_a_required_type_has_every_known_user_and_opting_out_leaves_it(
        node, http, pool):
    required, p = fresh("req")
    optional = f"{required}-opt"
    await declare(http, node, required, {"title": "Security", "required": True,
                                         "channels": {"push": True, "email": True}})
    await declare(http, node, optional, {"title": "Tips", "channels": {"push": True}})
    notified, profiled, chooser, with_device = f"{p}-a", f"{p}-b", f"{p}-c", f"{p}-d"
    async with http.post(f"{node.url}/api/v1/notifications", headers=PRODUCER,
                         json={"recipients": [notified], "message": "hello"}) as r:
        assert r.status == 201
    async with http.put(f"{node.url}/api/v1/users/{profiled}", headers=PRODUCER,
                        json={"email": "b@example.com", "locale": "fr-FR",
                              "timezone": "Europe/Paris"}) as r:
        assert r.status == 201
    await choose(http, node, chooser, {"channels": {"push": False, "email": False},
                                       "types": {optional: {"channels": {"push": False}}}})
    async with http.post(f"{node.url}/api/v1/me/devices", headers=user_headers(with_device),
                         json={"platform": "fcm", "token": "d" * 20 + p}) as r:
        assert r.status == 201

    assert await listed(http, node, required, p) == [notified, profiled, chooser, with_device]
    assert await listed(http, node, optional, p) == [notified, profiled, with_device]
    status, first = await call(http, node, "get", f"/api/v1/admin/types/{required}/subscribers"
                               f"?after={p}&limit=2", None, ADMIN)
    assert (status, first["items"], first["next_after"]) == (200, [notified, profiled],
                                                              profiled)
    assert await listed(http, node, required, p, first["next_after"], 2) == [
        chooser, with_device]

    status, seen = await call(http, node, "get", f"/api/v1/admin/user?id={chooser}", None,
                              ADMIN)
    assert status == 200 and seen["profile"] is None
    prefs = seen["preferences"]
    assert prefs["channels"] == {"push": False, "email": False, "web_push": True}
    assert prefs["types"][required]["channels"] == {"push": True, "email": True}
    assert prefs["types"][optional]["channels"] == {"push": False}
    assert prefs["version"] == 1
    status, seen = await call(http, node, "get", f"/api/v1/admin/user?id={profiled}", None,
                              ADMIN)
    profile = seen["profile"]
    assert (profile["email"], profile["locale"], profile["timezone"]) == (
        "b@example.com", "fr-FR", "Europe/Paris")
    assert profile["email_status"] == "ok" and profile["email_bounce"] is None
    assert seen["preferences"]["version"] == 0
    await pool.execute("UPDATE tidings_profiles SET email_status = 'bouncing',"
                       " email_bounce = '550 no such user', email_bounced_at = now()"
                       " WHERE user_id = $1", profiled)
    status, seen = await call(http, node, "get", f"/api/v1/admin/user?id={profiled}", None,
                              ADMIN)
    assert seen["profile"]["email_status"] == "bouncing"
    assert seen["profile"]["email_bounce"]["detail"] == "550 no such user"


async def test_an_unknown_type_is_refused_and_changes_nothing(node, http, pool):
    name, _ = fresh("nope")
    before = (await audit_rows(pool),
              await pool.fetchval("SELECT count(*) FROM tidings_notifications"))
    for path, body in ((f"/api/v1/admin/types/{name}/notifications", {"message": "m"}),
                       ("/api/v1/admin/types/not%20a%20name/notifications", {"message": "m"}),
                       (f"/api/v1/admin/types/{name}/subscribers", None)):
        status, answer = await call(http, node, "post" if body else "get", path, body, ADMIN)
        assert (status, answer["error"]["code"]) == (404, "unknown_type"), path
    await declare(http, node, name, {"title": "Known", "channels": {"push": False}})
    for bad in ({"message": ""}, {"message": "m", "recipients": ["a"]},
                {"message": "m", "delay": 5}, {"message": "m", "type": "other"},
                {"message": "m", "push": {"when": "unread_after"}},
                {"message": "m", "after": "a\u0001"}):
        status, answer = await call(http, node, "post",
                                    f"/api/v1/admin/types/{name}/notifications", bad, ADMIN)
        assert (status, answer["error"]["code"]) == (400, "invalid_request"), bad
    for query in ("limit=0", "limit=101", "after="):
        status, answer = await call(http, node, "get",
                                    f"/api/v1/admin/types/{name}/subscribers?{query}", None,
                                    ADMIN)
        assert status == 400, query
    after = (await audit_rows(pool),
             await pool.fetchval("SELECT count(*) FROM tidings_notifications"))
    assert after == before


async def test_the_types_are_listed_for_the_console(node, http):
    name, _ = fresh("listed")
    await declare(http, node, name, {"title": "Listed", "required": True})
    status, answer = await call(http, node, "get", "/api/v1/admin/types", None, ADMIN)
    assert status == 200
    [found] = [t for t in answer["types"] if t["name"] == name]
    assert (found["title"], found["required"], found["channels"]) == (
        "Listed", True, {"push": True})


async def test_a_send_stopped_midway_names_where_to_resume(node, http, pool, settings):
    """Pages of two known users; PostgreSQL refuses the third subscriber's row: the first
    page is stored, the answer is a 202 naming the last user handled, and sending again
    after it reaches the rest, once each."""
    name, p = fresh("resume")
    await declare(http, node, name, {"title": "Opt-in", "channels": {"push": False}})
    users = [f"{p}-{i}" for i in range(4)]
    for u in users:
        await choose(http, node, u, {"types": {name: {"channels": {"push": True}}}})
    services = node.app[SERVICES]
    admin = Admin(settings, pool, services.redis, services.publishing, services.types,
                  page_rows=2)
    await pool.execute("ALTER TABLE tidings_notifications ADD CONSTRAINT refuse_one"
                       f" CHECK (user_id <> '{users[2]}') NOT VALID")
    try:
        answer = await admin.send_to_type("key-test", name, TypeSend(message="m", after=p))
    finally:
        await pool.execute("ALTER TABLE tidings_notifications DROP CONSTRAINT refuse_one")
    assert answer.status == 202
    assert (answer.body["created"], answer.body["resume_after"]) == (2, users[1])
    [row] = [r for r in await audit_rows(pool) if r["target"] == f"subscribers of {name}"]
    assert (row["detail"]["recipient_count"], row["detail"]["resume_after"]) == (2, users[1])
    answer = await admin.send_to_type("key-test", name,
                                      TypeSend(message="m", after=answer.body["resume_after"]))
    assert answer.status == 201 and answer.body["resume_after"] is None
    assert [n["recipient"] for n in answer.body["notifications"]][:2] == users[2:]
    assert await notes_of(pool, users) == {u: [name] for u in users}


async def test_an_opt_out_stands_beside_a_stored_choice_that_no_longer_parses(node, http,
                                                                             pool):
    """Choices stored under an older rule (a quiet hours time with a final newline, a
    channel this server does not have) lose only that part: the user who turned the type
    off is no subscriber, and their lookup and their own document still say it is off."""
    name, p = fresh("stale")
    await declare(http, node, name, {"title": "Opt-out", "channels": {"push": True,
                                                                      "email": True}})
    stale, fresh_user = f"{p}-a", f"{p}-b"
    await choose(http, node, stale, {"types": {name: {"channels": {"push": False,
                                                                   "email": False}}}})
    await choose(http, node, fresh_user, {"channels": {"email": False}})
    await pool.execute(
        "UPDATE tidings_preferences SET choices = choices || $2::jsonb WHERE user_id = $1",
        stale, {"quiet_hours": {"start": "22:00\n", "end": "07:00"},
                "channels": {"email": False, "pager": True}})
    assert await listed(http, node, name, p) == [fresh_user]
    status, seen = await call(http, node, "get", f"/api/v1/admin/user?id={stale}", None,
                              ADMIN)
    assert status == 200
    assert seen["preferences"]["types"][name]["channels"] == {"push": False, "email": False}
    assert seen["preferences"]["channels"]["email"] is False
    assert seen["preferences"]["quiet_hours"] is None
    status, sent = await call(http, node, "post", f"/api/v1/admin/types/{name}/notifications",
                              {"message": "m", "after": p}, ADMIN)
    assert status == 201, sent
    assert [n["recipient"] for n in sent["notifications"]][:1] == [fresh_user]
    assert (await notes_of(pool, [stale]))[stale] == []
