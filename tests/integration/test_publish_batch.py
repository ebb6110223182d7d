"""`POST /api/v1/notifications/batch`: distinct publishes, each answered on its own, in order."""

from __future__ import annotations

import asyncio
import json
import os
import subprocess
import sys

from tidings.core.requests import MAX_BATCH

from helpers import API_KEY, PRODUCER, new_user

BATCH = "/api/v1/notifications/batch"


async def post(http, node, body):
    async with http.post(f"{node.url}{BATCH}", headers=PRODUCER, json=body) as r:
        return r.status, await r.json()


async def test_each_member_is_answered_alone_and_the_good_ones_are_stored(node, http, pool):
    a, b = new_user("batch"), new_user("batch")
    status, body = await post(http, node, {"notifications": [
        {"recipients": [a, b], "message": "one", "push": {"when": "never"}},
        {"recipients": [a], "message": ""},  # too short: a 400 in its slot
        {"recipients": [b], "message": "two", "data": {"k": 1}},
        {"recipients": [a], "message": "x", "push": {"when": "unread_after"}},  # needs after
        {"recipients": [a], "message": "later", "delay": 3600},
        {"recipients": [a], "message": "live", "persist": False},
        {"recipients": [a], "message": "three", "surprise": 1},  # unknown field
    ]})
    assert status == 200, body
    results = body["results"]
    assert [r["status"] for r in results] == [201, 400, 201, 400, 202, 202, 400]
    assert results[1]["error"]["code"] == "invalid_request" and "message" in (
        results[1]["error"]["message"])
    assert "after" in results[3]["error"]["message"]
    assert results[4]["scheduled"] is True and results[5]["created"] == 0
    assert [(n["recipient"], n["seq"]) for n in results[0]["notifications"]] == [(a, 1), (b, 1)]
    assert [(n["recipient"], n["seq"]) for n in results[2]["notifications"]] == [(b, 2)]
    stored = await pool.fetch("SELECT user_id, seq, message, uid::text FROM tidings_notifications"
                              " WHERE user_id = ANY($1) ORDER BY user_id, seq", [a, b])
    assert sorted((r["user_id"], r["seq"], r["message"]) for r in stored) == sorted(
        [(a, 1, "one"), (b, 1, "one"), (b, 2, "two")])
    answered = {n["uid"] for r in (results[0], results[2]) for n in r["notifications"]}
    assert answered == {r["uid"] for r in stored}


async def test_members_naming_one_user_get_seqs_in_member_order(node, http):
    user = new_user("border")
    status, body = await post(http, node, {"notifications": [
        {"recipients": [user], "message": f"m{i}"} for i in range(50)]})
    assert status == 200
    assert [r["notifications"][0]["seq"] for r in body["results"]] == list(range(1, 51))


async def test_idempotency_keys_are_per_member(node, http, pool):
    user = new_user("bkey")
    first = {"recipients": [user], "message": "once", "idempotency_key": f"k1-{user}"}
    other = {"recipients": [user], "message": "other", "idempotency_key": f"k2-{user}"}
    status, body = await post(http, node, {"notifications": [first, other]})
    assert status == 200 and [r["status"] for r in body["results"]] == [201, 201]
    reused = dict(first, message="changed")
    status, again = await post(http, node, {"notifications": [
        other, reused, {"recipients": [user], "message": "new"}]})
    assert status == 200
    assert again["results"][0] == body["results"][1], "the same key and body: the first answer"
    assert again["results"][1]["status"] == 409
    assert again["results"][1]["error"]["code"] == "idempotency_key_reused"
    assert again["results"][2]["status"] == 201
    assert await pool.fetchval(
        "SELECT count(*) FROM tidings_notifications WHERE user_id = $1", user) == 3


async def test_envelope_limits_are_a_400_for_the_whole_and_store_nothing(node, http, pool):
    user = new_user("blimit")
    one = {"recipients": [user], "message": "x"}
    for bad in ({"notifications": []}, {"notifications": [one] * (MAX_BATCH + 1)},
                {"notifications": [one, 3]}, {"notifications": [one], "extra": 1},
                [one], {"notifications": one}):
        status, body = await post(http, node, bad)
        assert status == 400, (bad if len(json.dumps(bad)) < 200 else len(bad), body)
        assert set(body) == {"error"}
    async with http.post(f"{node.url}{BATCH}", data=b"{nope",
                         headers={**PRODUCER, "Content-Type": "application/json"}) as r:
        assert r.status == 400 and (await r.json())["error"]["code"] == "invalid_json"
    async with http.post(f"{node.url}{BATCH}", json={"notifications": [one]}) as r:
        assert r.status == 401
    assert await pool.fetchval(
        "SELECT count(*) FROM tidings_notifications WHERE user_id = $1", user) == 0
    status, body = await post(http, node, {"notifications": [
        {"recipients": [new_user("bfull")], "message": "x"} for _ in range(MAX_BATCH)]})
    assert status == 200 and {r["status"] for r in body["results"]} == {201}


async def test_push_batch_command(node, pool, tmp_path):
    user = new_user("bcli")
    path = tmp_path / "batch.json"
    path.write_text(json.dumps([{"recipients": [user], "message": "a"},
                                {"recipients": [user], "message": ""}]))
    env = {k: v for k, v in os.environ.items() if not k.startswith("TIDINGS_")}
    result = await asyncio.to_thread(
        subprocess.run, [sys.executable, "-m", "tidings", "push", "--url", node.url,
                         "--api-key", API_KEY, "--batch", str(path)],
        env=env, capture_output=True, text=True, timeout=60)
    assert result.returncode == 1, "a member was refused"
    assert [r["status"] for r in json.loads(result.stdout)["results"]] == [201, 400]
    assert await pool.fetchval(
        "SELECT count(*) FROM tidings_notifications WHERE user_id = $1", user) == 1


async def test_a_full_batch_of_keyed_members_is_stored_once(node, http, pool):
    user = new_user("bkeys")
    members = [{"recipients": [user], "message": f"m{i}", "idempotency_key": f"{user}-{i}"}
               for i in range(MAX_BATCH)]
    status, body = await post(http, node, {"notifications": members})
    assert status == 200 and {r["status"] for r in body["results"]} == {201}
    status, again = await post(http, node, {"notifications": members})
    assert status == 200 and again == body, "the same keys and bodies: the first answers"
    assert await pool.fetchval(
        "SELECT count(*) FROM tidings_notifications WHERE user_id = $1", user) == MAX_BATCH
