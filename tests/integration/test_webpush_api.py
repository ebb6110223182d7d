"""Web Push subscriptions through the devices API: what is accepted, what is refused (SSRF),
the public key endpoint and the service worker."""

from __future__ import annotations

import base64
import os
from dataclasses import replace

import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec

from tidings.core.ids import webpush_token
from tidings.push import vapid

from helpers import db_state, new_user, serve_node, user_headers

FCM = "https://fcm.googleapis.com/fcm/send/dQw4w9WgXcQ:APA91bHun4MxP5egoKMwt2KZFBaFUH-1RYqx"


def b64url(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def keys() -> dict[str, str]:
    point = ec.generate_private_key(ec.SECP256R1()).public_key().public_bytes(
        serialization.Encoding.X962, serialization.PublicFormat.UncompressedPoint)
    return {"p256dh": b64url(point), "auth": b64url(os.urandom(16))}


def subscription(endpoint: str = FCM, **changes) -> dict:
    return {"platform": "webpush", "name": "Firefox",
            "subscription": {"endpoint": endpoint, "expirationTime": None, "keys": keys()},
            **changes}


async def test_register_read_move_and_forget_a_subscription(node, http):
    alice, bob = new_user("wp"), new_user("wp")
    url = f"{node.url}/api/v1/me/devices"
    endpoint = f"{FCM}-{new_user()}"
    body = subscription(endpoint)
    async with http.post(url, headers=user_headers(alice), json=body) as r:
        assert r.status == 201, await r.text()
        dev = await r.json()
    token = webpush_token(endpoint)
    assert dev["token"] == token and token.startswith("webpush-")
    assert (dev["platform"], dev["endpoint"], dev["name"], dev["active"]) == (
        "webpush", endpoint, "Firefox", True)
    assert "p256dh" not in dev and "auth" not in dev  # the keys are not echoed
    body["subscription"]["keys"] = keys()  # the browser subscribed again: new keys
    async with http.post(url, headers=user_headers(alice), json=body) as r:
        assert r.status == 200
    async with http.get(f"{url}/{token}", headers=user_headers(alice)) as r:
        assert r.status == 200 and (await r.json())["endpoint"] == endpoint
    async with http.post(url, headers=user_headers(bob), json=subscription(endpoint)) as r:
        assert r.status == 201, "the browser's login changed: the subscription moves"
    async with http.get(f"{url}/{token}", headers=user_headers(alice)) as r:
        assert r.status == 404
    async with http.delete(f"{url}/{token}", headers=user_headers(bob)) as r:
        assert r.status == 204


async def test_the_stored_keys_are_the_latest_registered(node, http, pool):
    user = new_user("wp")
    endpoint = f"{FCM}-{new_user()}"
    first, second = subscription(endpoint), subscription(endpoint)
    for body in (first, second):
        async with http.post(f"{node.url}/api/v1/me/devices", headers=user_headers(user),
                             json=body) as r:
            assert r.status in (200, 201)
    row = await pool.fetchrow("SELECT endpoint, p256dh, auth FROM tidings_devices"
                              " WHERE platform = 'webpush' AND token = $1",
                              webpush_token(endpoint))
    assert dict(row) == {"endpoint": endpoint, **second["subscription"]["keys"]}


@pytest.mark.parametrize("endpoint", [
    "https://updates.push.services.mozilla.com/wpush/v2/gAAAAABf",
    "https://wns2-par02p.notify.windows.com/w/?token=BQYAAAD",
    "https://web.push.apple.com/QGuQyavXutnMH4hDsN",
    "https://fcm.googleapis.com:443/fcm/send/x",
])
async def test_each_known_push_service_is_accepted(node, http, endpoint):
    async with http.post(f"{node.url}/api/v1/me/devices", headers=user_headers(new_user("wp")),
                         json=subscription(endpoint)) as r:
        assert r.status == 201, await r.text()


@pytest.mark.parametrize(("endpoint", "says"), [
    ("http://fcm.googleapis.com/fcm/send/x", "https URL"),
    ("https://127.0.0.1/push", "address"),
    ("https://10.1.2.3/push", "address"),
    ("https://169.254.169.254/latest/meta-data", "address"),
    ("https://[::1]:8443/push", "address"),
    ("https://[::ffff:127.0.0.1]/push", "address"),
    ("https://localhost/push", "not a known push service"),
    ("https://evil.example.com/fcm.googleapis.com", "not a known push service"),
    ("https://fcm.googleapis.com.evil.example/x", "not a known push service"),
    ("https://push.services.mozilla.com/x", "not a known push service"),
    ("https://user@fcm.googleapis.com/x", "https URL"),
    ("https://fcm.googleapis.com/x#frag", "https URL"),
    ("https://FCM.googleapis.com/x", "https URL"),
    ("https://2130706433/x", "https URL"),
    ("https://fcm.googleapis.com:0/x", "https URL"),
    ("https://fcm.googleapis.com/a b", "https URL"),
    ("file:///etc/passwd", "https URL"),
])
async def test_endpoints_the_server_must_not_post_to_are_refused(node, http, pool, endpoint,
                                                                 says):
    before = await db_state(pool)
    async with http.post(f"{node.url}/api/v1/me/devices", headers=user_headers(new_user("wp")),
                         json=subscription(endpoint)) as r:
        assert r.status == 400
        error = (await r.json())["error"]
    assert error["code"] == "endpoint_not_allowed" and says in error["message"], error
    assert await db_state(pool) == before


@pytest.mark.parametrize(("field", "value"), [
    ("p256dh", b64url(b"\x04" + os.urandom(63))),  # 64 bytes
    ("p256dh", b64url(b"\x02" + os.urandom(64))),  # not uncompressed
    ("p256dh", b64url(b"\x04" + os.urandom(64)) + "="),  # padded
    ("auth", b64url(os.urandom(15))),
    ("auth", "not base64 at all!!!!!"),
])
async def test_malformed_keys_are_refused(node, http, pool, field, value):
    body = subscription(f"{FCM}-{new_user()}")
    body["subscription"]["keys"][field] = value
    before = await db_state(pool)
    async with http.post(f"{node.url}/api/v1/me/devices", headers=user_headers(new_user("wp")),
                         json=body) as r:
        assert r.status == 400
        error = (await r.json())["error"]
    assert error["code"] == "invalid_subscription_keys" and field in error["message"]
    assert await db_state(pool) == before


async def test_a_subscription_needs_its_keys(node, http):
    body = subscription()
    del body["subscription"]["keys"]
    async with http.post(f"{node.url}/api/v1/me/devices", headers=user_headers(new_user("wp")),
                         json=body) as r:
        assert r.status == 400 and "keys" in (await r.json())["error"]["message"]


async def test_the_setting_allows_more_hosts_and_listed_addresses(settings, http):
    s = replace(settings, webpush_allowed_hosts=("*.push.example.org", "10.0.0.0/8"))
    async with serve_node(s) as node:
        for endpoint, status in [("https://a.push.example.org/x", 201),
                                 ("https://10.9.8.7:8443/x", 201),
                                 ("https://10.9.8.7.nip.io/x", 400),
                                 ("https://192.168.1.1/x", 400),
                                 (FCM, 400)]:
            async with http.post(f"{node.url}/api/v1/me/devices",
                                 headers=user_headers(new_user("wp")),
                                 json=subscription(endpoint)) as r:
                assert r.status == status, (endpoint, await r.text())


async def test_the_public_key_endpoint(node, settings, http):
    async with http.get(f"{node.url}/api/v1/webpush/key") as r:
        assert r.status == 404
        assert (await r.json())["error"]["code"] == "webpush_not_configured"
    private, public = vapid.generate()
    s = replace(settings, vapid_private_key=private, vapid_subject="mailto:ops@example.com")
    async with serve_node(s) as node2, http.get(f"{node2.url}/api/v1/webpush/key") as r:
        assert r.status == 200 and await r.json() == {"public_key": public}


async def test_the_service_worker_is_served_from_the_root(node, http):
    async with http.get(f"{node.url}/tidings-sw.js") as r:
        assert r.status == 200 and r.content_type == "text/javascript"
        assert r.headers["Service-Worker-Allowed"] == "/"
        text = await r.text()
    assert "addEventListener('push'" in text and "notificationclick" in text
