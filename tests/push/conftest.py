"""Fixtures of the push tests: Redis db 5, fake APNs, FCM and Web Push, the push apps
pointing at them.

PostgreSQL comes from the shared ``pool`` / ``migrated`` fixtures (tests/conftest.py);
tests use fresh user ids instead of emptying tables. Redis is the shared server's
db 5, flushed before each test (no other suite uses it). The fakes run for the
whole session and are reset before each test.
"""

from __future__ import annotations

import json
import urllib.parse
from dataclasses import replace

import pytest
import redis.asyncio as aioredis
from push_helpers import CERT_TOPIC, KEY_ID, PROJECT, TEAM_ID, TOPIC

from fakes.fake_apns import FakeAPNs, make_p8, make_tls
from fakes.fake_fcm import FakeFCM, make_service_account
from fakes.fake_webpush import FakeWebPush
from helpers import new_user, serve_node

REDIS_DB = 5


@pytest.fixture(scope="session")
def push_redis_url(redis_url):
    return urllib.parse.urlparse(redis_url)._replace(path=f"/{REDIS_DB}").geturl()


@pytest.fixture
async def redis(push_redis_url, migrated):
    r = aioredis.Redis.from_url(push_redis_url)
    await r.flushdb()
    yield r
    await r.aclose()


@pytest.fixture
def user():
    return new_user("push")


@pytest.fixture(scope="session")
def tls(tmp_path_factory):
    return make_tls(tmp_path_factory.mktemp("apns-tls"), CERT_TOPIC)


@pytest.fixture(scope="session")
def p8():
    return make_p8()


@pytest.fixture(scope="session")
async def apns_server(tls, p8):
    fake = FakeAPNs(tls, TEAM_ID, {KEY_ID: p8[1]})
    await fake.start()
    yield fake
    await fake.stop()


@pytest.fixture
def apns(apns_server):
    apns_server.reset()
    return apns_server


@pytest.fixture(scope="session")
def service_account():
    return make_service_account(PROJECT)


@pytest.fixture(scope="session")
async def fcm_server(service_account):
    fake = FakeFCM(*service_account)
    await fake.start()
    yield fake
    await fake.stop()


@pytest.fixture
def fcm(fcm_server):
    fcm_server.reset()
    return fcm_server


@pytest.fixture
def apps(apns, fcm, tls, p8):
    """The push config of the tests: two APNs apps (token auth, the default; cert auth)
    and one FCM app, all pointed at the fakes."""
    where = {"host": apns.host, "port": apns.port, "ca_file": str(tls.ca)}
    return [
        {"platform": "apns", "kind": "apns", "topic": TOPIC, "key": p8[0], "key_id": KEY_ID,
         "team_id": TEAM_ID, **where},
        {"platform": "apns", "kind": "apns", "topic": CERT_TOPIC, "cert_file": str(tls.client_pem),
         "sandbox": True, **where},
        {"platform": "fcm", "kind": "fcm", "token_url": fcm.token_url, "api_url": fcm.url,
         "service_account": fcm.account},
    ]


@pytest.fixture(scope="session")
def vapid_keys():
    """(private key as TIDINGS_VAPID_PRIVATE_KEY takes it, public key), base64url."""
    from tidings.push import vapid

    return vapid.generate()


@pytest.fixture(scope="session")
async def webpush_server(tls, vapid_keys):
    fake = FakeWebPush(str(tls.server_cert), str(tls.server_key),
                       application_server_key=vapid_keys[1])
    await fake.start()
    yield fake
    await fake.stop()


@pytest.fixture
def webpush(webpush_server):
    webpush_server.reset()
    return webpush_server


@pytest.fixture
async def console(settings, push_redis_url, apps, redis, pool):
    """A node with the fakes' push apps and one attempt per push; the test runs the worker."""
    await pool.execute("DELETE FROM tidings_push_jobs")
    s = replace(settings, redis_url=push_redis_url, push_config=json.dumps(apps),
                push_workers=False, push_max_attempts=1)
    async with serve_node(s) as node:
        yield node
