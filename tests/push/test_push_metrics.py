"""Push metrics of a node against the fake APNs and FCM: sends by provider and outcome, their
durations, and the queue gauges filling and draining."""

from __future__ import annotations

import asyncio
import json
import secrets
from dataclasses import replace

import aiohttp
import pytest
from prometheus_client.parser import text_string_to_metric_families
from push_helpers import apns_token

from tidings.app import push_worker
from tidings.services.context import SERVICES

from fakes.fake_apns import Answer as ApnsAnswer
from fakes.fake_fcm import Answer as FcmAnswer
from helpers import ADMIN_KEY, PRODUCER, new_user, serve_node, user_headers


@pytest.fixture
async def push_node(settings, push_redis_url, apps, redis, pool):
    await pool.execute("DELETE FROM tidings_push_jobs")  # the worker here takes what is due
    s = replace(settings, redis_url=push_redis_url, push_config=json.dumps(apps),
                push_workers=False, admin_keys=(ADMIN_KEY,), push_backoff_base=3600.0)
    async with serve_node(s) as node:
        yield node


async def scrape(http: aiohttp.ClientSession, node) -> dict[tuple[str, frozenset], float]:
    async with http.get(node.url + "/metrics",
                        headers={"Authorization": f"Bearer {ADMIN_KEY}"}) as r:
        assert r.status == 200
        text = await r.text()
    return {(s.name, frozenset(s.labels.items())): s.value
            for f in text_string_to_metric_families(text) for s in f.samples}


async def until(http, node, check, within: float = 30.0) -> dict:
    deadline = asyncio.get_running_loop().time() + within
    while not check(got := await scrape(http, node)):
        assert asyncio.get_running_loop().time() < deadline, got
        await asyncio.sleep(0.1)
    return got


def sends(got: dict, provider: str, outcome: str) -> float:
    return got[("tidings_push_sends_total",
                frozenset({"provider": provider, "outcome": outcome}.items()))]


def sent_count(got: dict, provider: str) -> float:
    return got[("tidings_push_send_duration_seconds_count",
                frozenset({"provider": provider}.items()))]


async def register(http, node, user: str, token: str, platform: str) -> None:
    async with http.post(f"{node.url}/api/v1/me/devices", headers=user_headers(user),
                         json={"token": token, "platform": platform}) as r:
        assert r.status == 201


async def test_sends_are_counted_by_provider_and_outcome(push_node, http, apns, fcm, redis,
                                                         pool):
    a, b = new_user("pm"), new_user("pm")
    good, gone, android = apns_token(), apns_token(), f"fcm-{secrets.token_hex(16)}"
    await register(http, push_node, a, good, "apns")
    await register(http, push_node, a, android, "fcm")
    await register(http, push_node, b, gone, "apns")
    apns.answer(gone, ApnsAnswer(410, "Unregistered", timestamp=1_700_000_000_000))
    fcm.answer(android, FcmAnswer(503, "UNAVAILABLE", "try later", retry_after="1"))
    services = push_node.app[SERVICES]
    worker, registry = push_worker(services.settings, redis, pool, metrics=services.metrics)
    before = await scrape(http, push_node)
    for provider in ("apns", "fcm"):  # known from the configuration, at zero from the start
        assert sends(before, provider, "delivered") == 0 and sent_count(before, provider) == 0

    async with http.post(f"{push_node.url}/api/v1/notifications", headers=PRODUCER,
                         json={"recipients": [a, b], "message": "hi"}) as r:
        assert r.status == 201
    await services.publishing.retired()
    queued = await until(http, push_node,
                         lambda got: got[("tidings_push_queue_depth", frozenset())] == 2)
    assert queued[("tidings_push_queue_lag_seconds", frozenset())] >= 0

    try:
        await worker.run(burst=True)
    finally:
        await registry.close()
    got = await scrape(http, push_node)
    assert sends(got, "apns", "delivered") == 1
    assert sends(got, "apns", "invalid_token") == 1
    assert sends(got, "fcm", "retry") == 1
    assert sends(got, "fcm", "delivered") == 0
    assert sent_count(got, "apns") == 2 and sent_count(got, "fcm") == 1
    assert got[("tidings_push_send_duration_seconds_sum", frozenset({("provider", "apns")}))] > 0
    # the FCM send is due again in an hour (the backoff): nothing is due now
    await until(http, push_node, lambda got: got[("tidings_push_queue_depth", frozenset())] == 0)
