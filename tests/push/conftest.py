"""Fixtures of the push tests: Redis db 5, fake APNs, FCM and Web Push, the push apps
pointing at them, the settings of a node using those apps, a clock the tests move and
a push worker's burst on it.

PostgreSQL comes from the shared ``pool`` / ``migrated`` fixtures (tests/conftest.py);
tests use fresh user ids instead of emptying tables. Redis is the shared server's
db 5, flushed before each test (no other suite uses it). The fakes run for the
whole session and are reset before each test.
"""

from __future__ import annotations

import inspect
import json
import urllib.parse
from dataclasses import replace

import pytest
import redis.asyncio as aioredis
from push_helpers import CERT_TOPIC, KEY_ID, PROJECT, TEAM_ID, TOPIC
from typed_helpers import Clock

from tidings.bus.throttle import Throttle
from tidings.push.registry import Registry
from tidings.workers.push import PushWorker, WorkerConfig

from fakes.fake_apns import FakeAPNs, make_p8, make_tls
from fakes.fake_fcm import FakeFCM, make_service_account
from fakes.fake_webpush import FakeWebPush
from helpers import new_user, serve_node

REDIS_DB = 5


def served(build):
    """A session fixture: the fake ``build`` makes (its arguments are fixtures), started
    for the session and stopped after it."""
    async def serve(**fixtures):
        fake = build(**fixtures)
        await fake.start()
        yield fake
        await fake.stop()
    serve.__signature__ = inspect.signature(build)  # the fixtures pytest hands over
    return pytest.fixture(scope="session", name=build.__name__)(serve)


def fresh(name: str):
    """The per-test fixture ``name``: the session's fake ``<name>_server``, reset."""
    @pytest.fixture(name=name)
    def reset(request):
        fake = request.getfixturevalue(f"{name}_server")
        fake.reset()
        return fake
    return reset


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


@served
def apns_server(tls, p8):
    return FakeAPNs(tls, TEAM_ID, {KEY_ID: p8[1]})


apns = fresh("apns")


@pytest.fixture(scope="session")
def service_account():
    return make_service_account(PROJECT)


@served
def fcm_server(service_account):
    return FakeFCM(*service_account)


fcm = fresh("fcm")


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


@served
def webpush_server(tls, vapid_keys):
    return FakeWebPush(str(tls.server_cert), str(tls.server_key),
                       application_server_key=vapid_keys[1])


webpush = fresh("webpush")


@pytest.fixture
def push_settings(settings, push_redis_url, apps):
    """The settings of a node with the fakes' push apps whose test runs the worker."""
    return replace(settings, redis_url=push_redis_url, push_config=json.dumps(apps),
                   push_workers=False)


@pytest.fixture
def clock():
    return Clock()


@pytest.fixture
async def burst(redis, pool, apps, clock):
    """Runs a push worker on the test clock until no job is due. Other tests' leftover
    jobs are deleted first: a clock moved forward would take them."""
    await pool.execute("DELETE FROM tidings_push_jobs")
    await pool.execute("DELETE FROM tidings_push_options")
    registry = Registry.from_config(apps)

    async def run() -> None:
        await PushWorker(pool, registry, WorkerConfig(name="w"), throttle=Throttle(redis),
                         clock=clock).run(burst=True)

    yield run
    await registry.close()


@pytest.fixture
async def push_node(push_settings, redis, pool):
    """A node with the fakes' push apps; the test runs the worker, which takes what is due
    (other tests' leftover jobs are deleted first)."""
    await pool.execute("DELETE FROM tidings_push_jobs")
    async with serve_node(push_settings) as node:
        yield node


@pytest.fixture
async def console(push_settings, redis, pool):
    """A node with the fakes' push apps and one attempt per push; the test runs the worker."""
    await pool.execute("DELETE FROM tidings_push_jobs")
    async with serve_node(replace(push_settings, push_max_attempts=1)) as node:
        yield node
