"""Push metrics of a node against the fake APNs and FCM: sends by provider and outcome, their
durations, and the queue gauges filling and draining."""

from __future__ import annotations

import secrets
from dataclasses import replace

import pytest
from push_helpers import apns_token

from tidings.app import push_worker
from tidings.services.context import SERVICES

from fakes.fake_apns import Answer as ApnsAnswer
from fakes.fake_fcm import Answer as FcmAnswer
from helpers import (
    ADMIN_KEY,
    Samples,
    metrics_until,
    new_user,
    publish,
    register_device,
    scrape,
    value,
)


@pytest.fixture
def push_settings(push_settings):
    """Metrics behind the admin key, and a retry far enough away never to be due."""
    return replace(push_settings, admin_keys=(ADMIN_KEY,), push_backoff_base=3600.0)


def sends(got: Samples, provider: str, outcome: str) -> float | None:
    return value(got, "tidings_push_sends_total", provider=provider, outcome=outcome)


def sent_count(got: Samples, provider: str) -> float | None:
    return value(got, "tidings_push_send_duration_seconds_count", provider=provider)


async def test_sends_are_counted_by_provider_and_outcome(push_node, http, apns, fcm, redis,
                                                         pool):
    a, b = new_user("pm"), new_user("pm")
    good, gone, android = apns_token(), apns_token(), f"fcm-{secrets.token_hex(16)}"
    await register_device(http, push_node, a, token=good, platform="apns")
    await register_device(http, push_node, a, token=android, platform="fcm")
    await register_device(http, push_node, b, token=gone, platform="apns")
    apns.answer(gone, ApnsAnswer(410, "Unregistered", timestamp=1_700_000_000_000))
    fcm.answer(android, FcmAnswer(503, "UNAVAILABLE", "try later", retry_after="1"))
    services = push_node.app[SERVICES]
    worker, registry = push_worker(services.settings, redis, pool, metrics=services.metrics)
    _, before = await scrape(http, push_node.url)
    for provider in ("apns", "fcm"):  # known from the configuration, at zero from the start
        assert sends(before, provider, "delivered") == 0 and sent_count(before, provider) == 0

    await publish(http, push_node, [a, b], "hi")
    await services.publishing.retired()
    queued = await metrics_until(http, push_node.url,
                                 lambda got: value(got, "tidings_push_queue_depth") == 2)
    assert value(queued, "tidings_push_queue_lag_seconds") >= 0

    try:
        await worker.run(burst=True)
    finally:
        await registry.close()
    _, got = await scrape(http, push_node.url)
    assert sends(got, "apns", "delivered") == 1
    assert sends(got, "apns", "invalid_token") == 1
    assert sends(got, "fcm", "retry") == 1
    assert sends(got, "fcm", "delivered") == 0
    assert sent_count(got, "apns") == 2 and sent_count(got, "fcm") == 1
    assert value(got, "tidings_push_send_duration_seconds_sum", provider="apns") > 0
    # the FCM send is due again in an hour (the backoff): nothing is due now
    await metrics_until(http, push_node.url,
                        lambda got: value(got, "tidings_push_queue_depth") == 0)
