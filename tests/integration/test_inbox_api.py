"""The user and producer HTTP API over real HTTP, PostgreSQL and Redis."""

from __future__ import annotations

import asyncio
import uuid

from helpers import (
    db_state,
    eventually,
    new_user,
    post_notification,
    settled_state,
    user_headers,
)


async def inbox(http, node, user, **query):
    async with http.get(f"{node.url}/api/v1/me/notifications", headers=user_headers(user),
                        params={k: str(v).lower() if isinstance(v, bool) else str(v)
                                for k, v in query.items()}) as r:
        return r.status, await r.json()


async def act(http, node, user, action, uids=None):
    body = {"action_choice": action}
    if uids is not None:
        body["notification_uids"] = [str(u) for u in uids]
    async with http.patch(f"{node.url}/api/v1/me/notifications", headers=user_headers(user),
                          json=body) as r:
        return r.status, await r.json()


async def test_publish_then_list_newest_first_with_counts(node, http):
    alice = new_user()
    for i in range(3):
        status, body = await post_notification(http, node, [alice], f"m{i}", type="comment",
                                     title="T", data={"i": i}, created_by=7, model="Post",
                                     instance=42, method="POST", changed_data={"a": 1},
                                     custom_info={"x": True})
        assert status == 201 and body["created"] == 1
        assert body["notifications"][0]["seq"] == i + 1
    status, page = await inbox(http, node, alice)
    assert status == 200
    assert (page["total_notifications"], page["read_notifications"],
            page["unread_notifications"]) == (3, 0, 3)
    assert [n["notification"]["message"] for n in page["notifications"]] == ["m2", "m1", "m0"]
    first = page["notifications"][0]
    assert first["user"] == {"id": alice} and first["seq"] == 3 and first["is_read"] is False
    assert first["created_by"] == "7" and first["notification"]["instance"] == "42"
    assert first["data"] == {"i": 2} and first["custom_info"] == {"x": True}
    assert first["status"] == "ACTIVE" and first["type"] == "comment"
    async with http.get(f"{node.url}/api/v1/me/notifications/{first['uid']}",
                        headers=user_headers(alice)) as r:
        assert r.status == 200 and (await r.json())["uid"] == first["uid"]


async def test_pagination_pages_and_cursor(node, http):
    user = new_user()
    await post_notification(http, node, [user], "x")
    for i in range(24):
        await post_notification(http, node, [user], f"n{i}")
    seen = []
    page_no = 1
    while True:
        status, page = await inbox(http, node, user, page=page_no, page_size=10)
        assert status == 200
        seen += [n["seq"] for n in page["notifications"]]
        if page["next_before"] is None:
            break
        page_no += 1
    assert seen == list(range(25, 0, -1)) and page_no == 3
    status, _ = await inbox(http, node, user, page=4, page_size=10)
    assert status == 404
    cursor, via_cursor = None, []
    while True:
        query = {"page_size": 7} | ({"before": cursor} if cursor else {})
        _, page = await inbox(http, node, user, **query)
        via_cursor += [n["seq"] for n in page["notifications"]]
        cursor = page["next_before"]
        if cursor is None:
            break
    assert via_cursor == seen


async def test_actions_change_counts_and_filters(node, http):
    user = new_user()
    for i in range(5):
        await post_notification(http, node, [user], f"n{i}")
    _, page = await inbox(http, node, user)
    uids = [n["uid"] for n in page["notifications"]]
    status, body = await act(http, node, user, "MARK_AS_READ", uids[:2])
    assert status == 200 and body == {"updated": 2, "total_notifications": 5,
                                      "read_notifications": 2, "unread_notifications": 3}
    status, body = await act(http, node, user, "MARK_AS_READ", uids[:2])
    assert body["updated"] == 0 and body["unread_notifications"] == 3
    _, unread = await inbox(http, node, user, is_read=False)
    assert sorted(n["uid"] for n in unread["notifications"]) == sorted(uids[2:])
    _, read = await inbox(http, node, user, is_read=True)
    assert sorted(n["uid"] for n in read["notifications"]) == sorted(uids[:2])
    status, body = await act(http, node, user, "MARK_AS_REMOVED", [uids[0], uids[4]])
    assert body == {"updated": 2, "total_notifications": 3, "read_notifications": 1,
                    "unread_notifications": 2}
    _, page = await inbox(http, node, user)
    assert uuid.UUID(uids[0]) not in {uuid.UUID(n["uid"]) for n in page["notifications"]}
    status, body = await act(http, node, user, "MARK_ALL_AS_READ")
    assert body == {"updated": 2, "total_notifications": 3, "read_notifications": 3,
                    "unread_notifications": 0}
    status, body = await act(http, node, user, "REMOVED_ALL")
    assert body == {"updated": 3, "total_notifications": 0, "read_notifications": 0,
                    "unread_notifications": 0}
    _, page = await inbox(http, node, user)
    assert page["notifications"] == [] and page["total_notifications"] == 0


async def test_detail_patch(node, http):
    user = new_user()
    _, body = await post_notification(http, node, [user])
    uid = body["notifications"][0]["uid"]
    url = f"{node.url}/api/v1/me/notifications/{uid}"
    async with http.patch(url, headers=user_headers(user), json={"is_read": True}) as r:
        assert r.status == 200 and (await r.json())["is_read"] is True
    async with http.patch(url, headers=user_headers(user), json={"status": "BOGUS"}) as r:
        assert r.status == 400
    async with http.patch(url, headers=user_headers(user), json={"status": "REMOVED"}) as r:
        assert r.status == 200
    async with http.get(url, headers=user_headers(user)) as r:
        assert r.status == 404
    _, page = await inbox(http, node, user)
    assert page["total_notifications"] == 0


async def test_users_are_isolated(node, http, pool):
    alice, mallory = new_user("alice"), new_user("mallory")
    _, body = await post_notification(http, node, [alice], "private")
    uid = body["notifications"][0]["uid"]
    before = await db_state(pool)
    for action in ("MARK_AS_READ", "MARK_AS_REMOVED"):
        status, answer = await act(http, node, mallory, action, [uid])
        assert status == 200 and answer["updated"] == 0
    for action in ("MARK_ALL_AS_READ", "REMOVED_ALL"):
        await act(http, node, mallory, action)
    async with http.get(f"{node.url}/api/v1/me/notifications/{uid}",
                        headers=user_headers(mallory)) as r:
        assert r.status == 404
    async with http.patch(f"{node.url}/api/v1/me/notifications/{uid}",
                          headers=user_headers(mallory), json={"status": "REMOVED"}) as r:
        assert r.status == 404
    _, page = await inbox(http, node, mallory)
    assert page["notifications"] == []
    after = await db_state(pool)
    assert after["tidings_notifications"] == before["tidings_notifications"]
    _, page = await inbox(http, node, alice)
    assert page["unread_notifications"] == 1


async def test_concurrent_publishes_keep_seqs_gap_free(node, http, pool):
    users = [new_user("c") for _ in range(6)]
    rounds = 15

    async def burst(i):
        # each call names the users in a different order, all overlapping
        order = users[i % 6:] + users[: i % 6]
        if i % 2:
            order.reverse()
        status, body = await post_notification(http, node, order, f"b{i}")
        assert status == 201, body

    await asyncio.gather(*(burst(i) for i in range(rounds)))
    for user in users:
        seqs = [r["seq"] for r in await pool.fetch(
            "SELECT seq FROM tidings_notifications WHERE user_id = $1 ORDER BY id", user)]
        assert sorted(seqs) == list(range(1, rounds + 1))
        assert seqs == sorted(seqs), "seq follows commit (id) order"
        state = await pool.fetchrow(
            "SELECT last_seq, total_count, unread_count FROM tidings_user_state"
            " WHERE user_id = $1", user)
        assert tuple(state) == (rounds, rounds, rounds)


async def test_batch_of_thousands_is_one_statement(node, http, pool):
    users = [new_user("b") for _ in range(3000)]
    status, body = await post_notification(http, node, users, "big")
    assert status == 201 and body["created"] == 3000
    assert {n["recipient"] for n in body["notifications"]} == set(users)
    count = await pool.fetchval(
        "SELECT count(*) FROM tidings_notifications WHERE user_id = ANY($1)", users)
    assert count == 3000


async def test_idempotent_republish(node, http, pool):
    user = new_user()
    key = f"order-{uuid.uuid4()}"
    results = await asyncio.gather(*(
        post_notification(http, node, [user], "once", idempotency_key=key) for _ in range(5)))
    assert {s for s, _ in results} == {201}
    assert all(body == results[0][1] for _, body in results)
    assert await pool.fetchval(
        "SELECT count(*) FROM tidings_notifications WHERE user_id = $1", user) == 1
    status, body = await post_notification(http, node, [user], "different", idempotency_key=key)
    assert status == 409 and body["error"]["code"] == "idempotency_key_reused"


async def test_live_only_publish_stores_nothing(node, http, pool):
    user = new_user()
    before = await settled_state(node, pool)  # earlier tests' retires run after their answers
    status, body = await post_notification(http, node, [user], "ephemeral", persist=False)
    assert status == 202 and body["created"] == 0
    assert body["notifications"][0]["seq"] is None
    assert await settled_state(node, pool) == before


async def test_delayed_publish_is_stored_when_due(node, http, pool):
    from tidings.services.context import SERVICES
    from tidings.workers.relay import Relay

    user = new_user()
    status, body = await post_notification(http, node, [user], "later", delay=0.2)
    assert status == 202 and body["scheduled"] is True
    _, page = await inbox(http, node, user)
    assert page["total_notifications"] == 0
    services = node.app[SERVICES]
    relay = Relay(pool, services.publishing)

    async def stored():  # once due, the relay publishes it
        await relay.run(burst=True)
        _, page = await inbox(http, node, user)
        return page if page["total_notifications"] else None
    page = await eventually(stored, within=10)
    assert [n["notification"]["message"] for n in page["notifications"]] == ["later"]
    await relay.run(burst=True)
    _, page = await inbox(http, node, user)
    assert page["total_notifications"] == 1


async def test_health_ready_and_openapi(node, http):
    async with http.get(f"{node.url}/healthz") as r:
        assert r.status == 200
    async with http.get(f"{node.url}/readyz") as r:
        assert r.status == 200 and (await r.json())["checks"] == {"postgres": "ok",
                                                                  "redis": "ok"}
    async with http.get(f"{node.url}/api/v1/openapi.json") as r:
        doc = await r.json()
    routes = {(route.method.lower(), route.resource.canonical)
              for route in node.app.router.routes() if route.method != "HEAD"}
    documented = {(m, p) for p, ops in doc["paths"].items() for m in ops}
    assert documented == routes
    schema = doc["paths"]["/api/v1/notifications"]["post"]["requestBody"]["content"]
    ref = schema["application/json"]["schema"]["$ref"].rsplit("/", 1)[1]
    assert "recipients" in doc["components"]["schemas"][ref]["required"]
