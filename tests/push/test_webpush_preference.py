"""Browser devices follow the ``web_push`` channel, mobile ones ``push``: a user who turns
one off keeps the other, decided at send time by the push worker, against the fake APNs
and the fake Web Push service on real PostgreSQL."""

from __future__ import annotations

import secrets
import time

import pytest
from push_helpers import add_device
from typed_helpers import Clock, declare, details, patch_preferences, publish, type_name

from tidings.core.webpush import HostPolicy
from tidings.push.registry import Registry, WebPushSetup
from tidings.push.vapid import Vapid, load_key
from tidings.workers.push import PushWorker, WorkerConfig


@pytest.fixture
def clock():
    return Clock()


@pytest.fixture
async def burst(pool, apps, tls, vapid_keys, apns, webpush, clock):
    """Runs a push worker (APNs, FCM and Web Push apps on the fakes) on the test clock until
    no job is due."""
    await pool.execute("DELETE FROM tidings_push_jobs")
    setup = WebPushSetup(Vapid(load_key(vapid_keys[0]), "mailto:ops@example.com"),
                         HostPolicy.parse(("localhost", "127.0.0.1")))
    registry = Registry.from_config(
        [*apps, {"platform": "webpush", "kind": "webpush", "ca_file": str(tls.ca)}],
        webpush=setup)

    async def run() -> None:
        await PushWorker(pool, registry, WorkerConfig(name="w"), clock=clock).run(burst=True)

    yield run
    await registry.close()


async def add_browser(pool, user, webpush) -> str:
    sub_id, browser = webpush.subscribe()
    keys = browser.subscription()["keys"]
    await pool.execute(
        "INSERT INTO tidings_devices (user_id, platform, token, endpoint, p256dh, auth)"
        " VALUES ($1, 'webpush', $2, $3, $4, $5)",
        user, f"webpush-{secrets.token_urlsafe(16)}", browser.endpoint, keys["p256dh"],
        keys["auth"])
    return sub_id


def payload_uids(webpush, sub_id) -> list[str]:
    return [r.payload["uid"] for r in webpush.for_sub(sub_id)]


async def test_turning_web_push_off_keeps_mobile_push_and_the_reverse(
        http, node, pool, apns, webpush, burst, user):
    kind = type_name()
    await declare(http, node, kind, channels={"push": True, "web_push": True},
                  push={"when": "always"})
    await add_device(pool, user)
    sub_id = await add_browser(pool, user, webpush)

    both = await publish(http, node, user, kind, "both")
    await burst()
    assert [r.payload["uid"] for r in apns.requests] == [both]
    assert payload_uids(webpush, sub_id) == [both]

    await patch_preferences(http, node, user, {"channels": {"web_push": False}})
    mobile_only = await publish(http, node, user, kind, "mobile only")
    await burst()
    assert [r.payload["uid"] for r in apns.requests] == [both, mobile_only]
    assert payload_uids(webpush, sub_id) == [both]
    assert ("skipped", f"preference: the user turned web_push off for {kind}") in \
        await details(pool, mobile_only)

    await patch_preferences(http, node, user, {"channels": {"web_push": True},
                                               "types": {kind: {"channels": {"push": False}}}})
    browser_only = await publish(http, node, user, kind, "browser only")
    await burst()
    assert [r.payload["uid"] for r in apns.requests] == [both, mobile_only]
    assert payload_uids(webpush, sub_id) == [both, browser_only]
    logged = await details(pool, browser_only)
    assert ("skipped", f"preference: the user turned push off for {kind}") in logged
    assert [o for o, _ in logged].count("pushed") == 1

    await patch_preferences(http, node, user, {"channels": {"web_push": False}})
    neither = await publish(http, node, user, kind, "neither")
    await burst()
    assert len(apns.requests) == 2 and len(webpush.for_sub(sub_id)) == 2
    assert await details(pool, neither) == [
        ("skipped", f"preference: the user turned push and web_push off for {kind}")]


async def test_a_type_without_web_push_reaches_phones_only_and_untyped_reaches_both(
        http, node, pool, apns, webpush, burst, user):
    kind = type_name()
    await declare(http, node, kind, channels={"push": True}, push={"when": "always"})
    await add_device(pool, user)
    sub_id = await add_browser(pool, user, webpush)
    typed = await publish(http, node, user, kind)
    untyped = await publish(http, node, user, None, push={"when": "always"})
    await burst()
    assert sorted(r.payload["uid"] for r in apns.requests) == sorted([typed, untyped])
    assert payload_uids(webpush, sub_id) == [untyped]
    assert ("skipped", f"type: {kind} does not use web_push") in await details(pool, typed)


async def test_a_type_with_web_push_only_plans_a_push_job_for_browsers(
        http, node, pool, apns, webpush, burst, user):
    kind = type_name()
    await declare(http, node, kind, channels={"web_push": True}, push={"when": "always"})
    await add_device(pool, user)
    sub_id = await add_browser(pool, user, webpush)
    uid = await publish(http, node, user, kind)
    await burst()
    assert apns.requests == []
    assert payload_uids(webpush, sub_id) == [uid]


async def test_browsers_get_the_web_push_templates_and_phones_the_push_ones(
        http, node, pool, apns, webpush, burst, user):
    kind = type_name()
    await declare(http, node, kind, channels={"push": True, "web_push": True},
                  push={"when": "always"}, templates={
                      "push": {"title": "Phone: {{ created_by }}", "body": "P {{ message }}"},
                      "web_push": {"title": "Browser: {{ created_by }}",
                                   "body": "W {{ message }} {{ data.post }}"}})
    await add_device(pool, user)
    sub_id = await add_browser(pool, user, webpush)
    uid = await publish(http, node, user, kind, "hi", created_by="bob", data={"post": "p1"})
    await burst()
    [phone] = apns.requests
    assert phone.payload["uid"] == uid
    assert phone.payload["aps"]["alert"] == {"title": "Phone: bob", "body": "P hi"}
    [browser] = webpush.for_sub(sub_id)
    assert (browser.payload["uid"], browser.payload["title"], browser.payload["body"]) == (
        uid, "Browser: bob", "W hi p1")
    assert [o for o, _ in await details(pool, uid)].count("pushed") == 2


async def test_a_web_push_field_missing_or_failing_falls_back_to_push_then_to_the_text(
        http, node, pool, apns, webpush, burst, user):
    kind = type_name()
    await declare(http, node, kind, channels={"web_push": True}, push={"when": "always"},
                  templates={"push": {"title": "P {{ created_by }}"},
                             "web_push": {"title": "W {{ data.post }}",
                                          "body": "W {{ data.post }}: {{ message }}"}})
    sub_id = await add_browser(pool, user, webpush)
    rendered = await publish(http, node, user, kind, "one", created_by="bob",
                             data={"post": "p1"})
    await burst()
    fell_back = await publish(http, node, user, kind, "two", title="Own title",
                              created_by="bob", data={})
    await burst()
    got = {r.payload["uid"]: (r.payload["title"], r.payload["body"])
           for r in webpush.for_sub(sub_id)}
    # no data.post: the title falls back to the push template, the body (no push
    # template) to the notification's message
    assert got == {rendered: ("W p1", "W p1: one"), fell_back: ("P bob", "two")}


async def test_a_digest_renders_its_web_push_templates_for_browsers(
        http, node, pool, apns, webpush, burst, clock, user):
    kind = type_name()
    await declare(http, node, kind, channels={"push": True, "web_push": True},
                  push={"when": "always"}, digest={"window": 60}, templates={
                      "push": {"digest_body": "{{ count }} on the phone"},
                      "web_push": {"digest_title": "{{ count }} in the browser"}})
    await add_device(pool, user)
    sub_id = await add_browser(pool, user, webpush)
    start = time.time()
    clock.set(start)
    for message in ("one", "two"):
        await publish(http, node, user, kind, message)
        await burst()  # opens the digest, then joins it
    assert apns.requests == [] and webpush.for_sub(sub_id) == []
    clock.set(start + 61)
    await burst()
    [phone] = apns.requests
    assert phone.payload["aps"]["alert"] == {"title": "Comments", "body": "2 on the phone"}
    [browser] = webpush.for_sub(sub_id)
    assert (browser.payload["title"], browser.payload["body"]) == (
        "2 in the browser", "2 on the phone")
