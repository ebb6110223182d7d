"""A browser subscription registered over HTTP, a publish to its user with no socket, the
worker's send, and the fake push service decrypting exactly what was published."""

from __future__ import annotations

import json
from dataclasses import replace

import pytest
from push_helpers import work

from fakes.fake_webpush import Answer
from helpers import (
    deliveries,
    new_user,
    publish,
    register_device,
    serve_node,
    uids,
    user_headers,
)

SUBJECT = "mailto:ops@example.com"


@pytest.fixture
def webpush_settings(settings, push_redis_url, vapid_keys, tls):
    return replace(
        settings, redis_url=push_redis_url, push_workers=False,
        push_config=json.dumps([{"platform": "webpush", "kind": "webpush",
                                 "ca_file": str(tls.ca)}]),
        vapid_private_key=vapid_keys[0], vapid_subject=SUBJECT,
        webpush_allowed_hosts=("localhost", "127.0.0.1"))


async def register(http, node, user, browser) -> dict:
    return await register_device(http, node, user, platform="webpush",
                                 subscription=browser.subscription(), name="Firefox on the desk")


async def publish_to(http, node, user, message, **fields) -> str:
    return uids(await publish(http, node, [user], message, **fields))[user]


async def log(http, node, uid) -> list[tuple[str, str, str | None]]:
    return [(d["channel"], d["outcome"], d["detail"]) for d in await deliveries(http, node, uid)]


async def test_a_user_without_a_socket_gets_the_exact_payload_in_the_browser(
        webpush_settings, webpush, http, redis, pool):
    await pool.execute("DELETE FROM tidings_push_jobs")
    user = new_user("wp-e2e")
    sub_id, browser = webpush.subscribe()
    async with serve_node(webpush_settings) as node:
        async with http.get(f"{node.url}/api/v1/webpush/key") as r:
            assert (await r.json())["public_key"] == webpush.application_server_key
        await register(http, node, user, browser)
        uid = await publish_to(http, node, user, "Your order shipped", title="Orders",
                               type="order", data={"order": 42},
                               push={"badge": 3, "ttl": 600, "extra": {"url": "/orders/42"}})
        await work(node, redis, pool)

        [got] = webpush.for_sub(sub_id)
        assert got.status == 201
        assert got.payload == {"url": "/orders/42", "data": {"order": 42}, "uid": uid,
                               "seq": 1, "type": "order", "title": "Orders",
                               "body": "Your order shipped", "tag": uid, "badge": 3}
        assert (got.headers["TTL"], got.headers["Topic"]) == ("600", uid.replace("-", ""))
        assert got.claims is not None and got.claims["sub"] == SUBJECT
        assert [(c, o) for c, o, _ in await log(http, node, uid)] == [
            ("webpush", "sending"), ("webpush", "pushed")]


async def test_an_expired_subscription_is_deactivated(webpush_settings, webpush, http, redis,
                                                      pool):
    await pool.execute("DELETE FROM tidings_push_jobs")
    user = new_user("wp-e2e")
    sub_id, browser = webpush.subscribe()
    webpush.answer(sub_id, Answer(410, text="push subscription has unsubscribed or expired"))
    async with serve_node(webpush_settings) as node:
        device = await register(http, node, user, browser)
        uid = await publish_to(http, node, user, "hello")
        await work(node, redis, pool)
        assert (await log(http, node, uid))[-1][:2] == ("webpush", "deactivated")
        async with http.get(f"{node.url}/api/v1/me/devices/{device['token']}",
                            headers=user_headers(user)) as r:
            dev = await r.json()
        assert dev["active"] is False and dev["deactivated_reason"].startswith("410")


async def test_a_name_resolving_to_loopback_registers_but_is_refused_at_send(
        webpush_settings, webpush, http, redis, pool):
    """``localhost`` is an allowed name here but 127.0.0.1 is not an allowed address."""
    await pool.execute("DELETE FROM tidings_push_jobs")
    user = new_user("wp-e2e")
    _, browser = webpush.subscribe()
    s = replace(webpush_settings, webpush_allowed_hosts=("localhost",))
    async with serve_node(s) as node:
        await register(http, node, user, browser)
        uid = await publish_to(http, node, user, "hello")
        await work(node, redis, pool)
        [*_, (channel, outcome, detail)] = await log(http, node, uid)
    assert (channel, outcome) == ("webpush", "failed")
    assert detail is not None and "refused" in detail and "127.0.0.1" in detail
    assert webpush.received == []
