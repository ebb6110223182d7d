"""Publishing with a declared type, decided at send time by the push worker: the type's
push defaults and templates, users' preferences, quiet hours and digests, against the
fake APNs on real PostgreSQL, with a clock the test moves (no sleeps)."""

from __future__ import annotations

import time
from datetime import UTC, datetime

from push_helpers import TOPIC, add_device, jobs_of, outcomes
from typed_helpers import (
    declare,
    details,
    next_utc,
    patch_preferences,
    publish,
    type_name,
)

from helpers import PRODUCER, user_headers


async def test_a_type_with_push_on_sends_its_defaults_and_templates(
        http, node, pool, apns, burst, user):
    kind = type_name()
    await declare(http, node, kind, push={"when": "always", "sound": "ping", "badge": 1},
                  templates={"push": {"title": "{{ created_by }} commented",
                                      "body": "{{ data.post }}: {{ message }}"}})
    device = await add_device(pool, user)
    uid = await publish(http, node, user, kind, "Nice!", created_by="bob",
                        data={"post": "Hello world"}, push={"badge": 7})
    await burst()
    [sent] = apns.requests
    assert sent.headers["apns-topic"] == TOPIC
    assert sent.payload["aps"] == {"alert": {"title": "bob commented",
                                             "body": "Hello world: Nice!"},
                                   "badge": 7, "sound": "ping"}  # the publish's badge wins
    assert await outcomes(pool, uid) == [("pushed", device, 1)]


async def test_a_template_failing_on_one_notification_falls_back_to_its_own_text(
        http, node, pool, apns, burst, user):
    kind = type_name()
    await declare(http, node, kind, push={"when": "always"},
                  templates={"push": {"body": "on {{ data.post }}"}})
    await add_device(pool, user)
    await publish(http, node, user, kind, "plain text", title="T")  # no data.post
    await burst()
    [sent] = apns.requests
    assert sent.payload["aps"]["alert"] == {"title": "T", "body": "plain text"}


async def test_a_user_who_turned_push_off_gets_none_and_the_log_says_why(
        http, node, pool, apns, burst, user):
    kind, alert = type_name(), type_name()
    await declare(http, node, kind, push={"when": "always"})
    await declare(http, node, alert, required=True, push={"when": "always"})
    await add_device(pool, user)
    await patch_preferences(http, node, user, {"channels": {"push": False}})
    skipped = await publish(http, node, user, kind)
    untyped = await publish(http, node, user, None, push={"when": "always"})
    required = await publish(http, node, user, alert)
    await burst()
    assert sorted(r.payload["uid"] for r in apns.requests) == sorted([untyped, required])
    [(outcome, detail)] = await details(pool, skipped)
    assert outcome == "skipped" and detail.startswith("preference")
    assert await jobs_of(pool, [skipped]) == []


async def test_a_preference_changed_after_publish_is_honoured_at_send_time(
        http, node, pool, apns, burst, user):
    turned_off, turned_on = type_name(), type_name()
    await declare(http, node, turned_off, push={"when": "always"})
    await declare(http, node, turned_on, push={"when": "always"})
    await add_device(pool, user)
    await patch_preferences(http, node, user,
                            {"types": {turned_on: {"channels": {"push": False}}}})
    was_on = await publish(http, node, user, turned_off)
    was_off = await publish(http, node, user, turned_on)
    await patch_preferences(http, node, user, {"types": {
        turned_off: {"channels": {"push": False}}, turned_on: {"channels": {"push": True}}}})
    await burst()
    assert [r.payload["uid"] for r in apns.requests] == [was_off]
    [(outcome, detail)] = await details(pool, was_on)
    assert outcome == "skipped" and detail.startswith("preference")


async def test_quiet_hours_hold_a_push_until_they_end(
        http, node, pool, apns, burst, clock, user):
    kind = type_name()
    await declare(http, node, kind, push={"when": "always"})
    await add_device(pool, user)
    async with http.put(f"{node.url}/api/v1/users/{user}", headers=PRODUCER,
                        json={"timezone": "Asia/Tokyo"}) as r:  # UTC+9, no DST
        assert r.status == 201
    await patch_preferences(http, node, user,
                            {"quiet_hours": {"start": "22:00", "end": "07:00"}})
    uid = await publish(http, node, user, kind)
    at = next_utc(14)  # 23:00 in Tokyo: quiet
    clock.set(at)
    await burst()
    assert apns.requests == []
    [(outcome, detail)] = await details(pool, uid)
    ends = at + 8 * 3600  # 07:00 in Tokyo
    assert outcome == "skipped" and detail.startswith("quiet hours")
    assert datetime.fromtimestamp(ends, UTC).strftime("%Y-%m-%dT%H:%M") in detail
    [job] = await jobs_of(pool, [uid])
    assert job["due_at"].timestamp() == ends and job["lease_until"] is None
    clock.set(ends - 60)  # 06:59: still quiet, and the job is not due
    await burst()
    assert apns.requests == []
    clock.set(ends + 1)
    await burst()
    assert [r.payload["uid"] for r in apns.requests] == [uid]
    assert [o for o, _ in await details(pool, uid)] == ["skipped", "sending", "pushed"]
    assert await jobs_of(pool, [uid]) == []


async def test_a_required_type_is_not_held_by_quiet_hours(
        http, node, pool, apns, burst, clock, user):
    kind = type_name()
    await declare(http, node, kind, required=True, push={"when": "always"})
    await add_device(pool, user)
    await patch_preferences(http, node, user, {"quiet_hours": {"start": "00:00", "end": "23:59"},
                                               "channels": {"push": False}})
    uid = await publish(http, node, user, kind)
    clock.set(next_utc(12))
    await burst()
    assert [r.payload["uid"] for r in apns.requests] == [uid]


async def test_a_digest_sends_three_notifications_in_one_push(
        http, node, pool, apns, burst, clock, user):
    kind = type_name()
    await declare(http, node, kind, push={"when": "always"}, digest={"window": 600},
                  templates={"push": {"digest_body":
                                      "{{ count }} new {{ type_title|lower }}: "
                                      "{{ notifications|map(attribute='message')|join(', ') }}"}})
    await add_device(pool, user)
    first = await publish(http, node, user, kind, "one")
    start = time.time()
    clock.set(start)
    await burst()  # opens the digest
    later = [await publish(http, node, user, kind, m) for m in ("two", "three")]
    await burst()  # joins it
    assert apns.requests == []
    for uid in (first, *later):
        [(outcome, detail)] = await details(pool, uid)
        assert outcome == "digested" and kind in detail
    [job] = await pool.fetch("SELECT * FROM tidings_push_jobs WHERE digest_user = $1", user)
    assert len(job["digest_ids"]) == 3 and job["due_at"].timestamp() >= start + 600 - 1
    clock.set(start + 599)
    await burst()
    assert apns.requests == []
    clock.set(start + 601)
    await burst()
    [sent] = apns.requests
    assert sent.payload["aps"]["alert"] == {"title": "Comments",
                                            "body": "3 new comments: one, two, three"}
    assert sent.payload["data"]["digest"] == {"count": 3, "uids": [first, *later]}
    assert await pool.fetch("SELECT 1 FROM tidings_push_jobs WHERE digest_user = $1", user) == []


async def test_a_digest_leaves_out_what_was_read_and_is_not_sent_when_all_was(
        http, node, pool, apns, burst, clock, user):
    kind = type_name()
    await declare(http, node, kind, push={"when": "always"}, digest={"window": 60})
    await add_device(pool, user)
    uids = [await publish(http, node, user, kind, m) for m in ("one", "two", "three")]
    start = time.time()
    clock.set(start)
    await burst()
    async with http.patch(f"{node.url}/api/v1/me/notifications", headers=user_headers(user),
                          json={"action_choice": "MARK_ALL_AS_READ"}) as r:
        assert r.status == 200
    clock.set(start + 61)
    await burst()
    assert apns.requests == []
    assert await pool.fetch("SELECT 1 FROM tidings_push_jobs WHERE digest_user = $1", user) == []
    logged = [d for uid in uids for d in await details(pool, uid)]
    assert [o for o, _ in logged].count("digested") == 3
    assert any(o == "skipped" and d.startswith("digest: all") for o, d in logged)

    # Two of a second round read: the one left is sent as itself, with its own text.
    again = [await publish(http, node, user, kind, m) for m in ("four", "five", "six")]
    clock.set(start + 62)
    await burst()
    async with http.patch(f"{node.url}/api/v1/me/notifications", headers=user_headers(user),
                          json={"action_choice": "MARK_AS_READ",
                                "notification_uids": again[:2]}) as r:
        assert r.status == 200
    clock.set(start + 62 + 61)
    await burst()
    [sent] = apns.requests
    assert (sent.payload["uid"], sent.payload["aps"]["alert"]["body"]) == (again[2], "six")
