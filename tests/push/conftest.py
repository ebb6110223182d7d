"""Fixtures of the push tests: a scratch PostgreSQL database, Redis db 5, fake APNs and FCM.

``TIDINGS_TEST_DATABASE_URL`` names a server where a database
``tidings_push_test_<random>`` is created (migrated) for the session and dropped
after; ``TIDINGS_TEST_REDIS_URL`` names a Redis whose db 5 is flushed before
each test. The fakes run for the whole session and are reset before each test.
"""

from __future__ import annotations

import os
import secrets
import urllib.parse

import asyncpg
import pytest
import redis.asyncio as aioredis
from tests.fakes.fake_apns import FakeAPNs, make_p8, make_tls
from tests.fakes.fake_fcm import FakeFCM, make_service_account
from tests.push.helpers import CERT_TOPIC, KEY_ID, PROJECT, TEAM_ID, TOPIC

from tidings.store import db, migrate

REDIS_DB = 5


def _env(name: str) -> str:
    value = os.environ.get(name)
    if not value:
        pytest.skip(f"{name} is not set")
    return value


@pytest.fixture(scope="session")
async def db_url():
    admin_url = _env("TIDINGS_TEST_DATABASE_URL")
    name = f"tidings_push_test_{secrets.token_hex(4)}"
    admin = await asyncpg.connect(admin_url)
    await admin.execute(f'CREATE DATABASE "{name}"')
    url = urllib.parse.urlparse(admin_url)._replace(path=f"/{name}").geturl()
    conn = await asyncpg.connect(url)
    try:
        await migrate.apply(conn)
    finally:
        await conn.close()
    yield url
    await admin.execute(f'DROP DATABASE "{name}" WITH (FORCE)')
    await admin.close()


@pytest.fixture(scope="session")
async def pool(db_url):
    p = await db.create_pool(db_url)
    yield p
    await p.close()


@pytest.fixture(scope="session")
def redis_url():
    url = urllib.parse.urlparse(_env("TIDINGS_TEST_REDIS_URL"))
    return url._replace(path=f"/{REDIS_DB}").geturl()


@pytest.fixture
async def redis(redis_url, pool):
    r = aioredis.Redis.from_url(redis_url)
    await r.flushdb()
    await pool.execute("TRUNCATE tidings_deliveries, tidings_devices, tidings_notifications"
                       " RESTART IDENTITY CASCADE")
    yield r
    await r.aclose()


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

