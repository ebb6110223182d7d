"""The APNs provider (aioapns) against the fake APNs over HTTP/2 + TLS."""

import asyncio
import time

import pytest
from push_helpers import CERT_TOPIC, KEY_ID, TEAM_ID, TOPIC, apns_token

from tidings.core.push import Device, Outcome, PushJob
from tidings.core.requests import PushOptions
from tidings.push.registry import Registry

from fakes.fake_apns import Answer


@pytest.fixture
async def registry(apps):
    reg = Registry.from_config(apps)
    yield reg
    await reg.close()


def device(app_id=None, token=None) -> Device:
    return Device(1, "u1", "apns", token or apns_token(), app_id)


def job(**kw) -> PushJob:
    base = dict(uid="0b9f5a3e-6a1b-4c55-9d8e-1f2a3b4c5d6e", user_id="u1", seq=3,
                message="hello", title="Hi")
    return PushJob(**(base | kw))


async def send(registry, dev, j=None):
    return await registry.for_device(dev).provider.send(dev, j or job())


async def test_token_auth_sends_headers_and_a_valid_es256_token(apns, registry):
    dev = device()
    j = job(push=PushOptions(badge=2, sound="ding", ttl=600, collapse_id="thread-9",
                             extra={"deep": "/x"}))
    assert (await send(registry, dev, j)).outcome is Outcome.DELIVERED
    (got,) = apns.requests
    assert got.token == dev.token and got.status == 200
    assert got.jwt_header == {"alg": "ES256", "kid": KEY_ID, "typ": "JWT"}
    assert got.claims["iss"] == TEAM_ID
    h = got.headers
    assert h["apns-topic"] == TOPIC and h["apns-push-type"] == "alert"
    assert h["apns-priority"] == "10" and h["apns-collapse-id"] == "thread-9"
    assert abs(int(h["apns-expiration"]) - (time.time() + 600)) < 60
    assert got.payload["aps"] == {"alert": {"body": "hello", "title": "Hi"}, "badge": 2,
                                  "sound": "ding"}
    assert got.payload["deep"] == "/x" and got.payload["seq"] == 3


async def test_certificate_auth_in_sandbox(apns, registry):
    dev = device(app_id=CERT_TOPIC)
    assert (await send(registry, dev)).outcome is Outcome.DELIVERED
    (got,) = apns.requests
    assert got.auth is None and got.headers["apns-topic"] == CERT_TOPIC
    assert (("userId", CERT_TOPIC),) in got.client_subject


async def test_one_provider_token_for_many_sends(apns, registry):
    devs = [device() for _ in range(20)]
    results = await asyncio.gather(*(send(registry, d) for d in devs))
    assert {r.outcome for r in results} == {Outcome.DELIVERED}
    assert len({r.auth for r in apns.requests}) == 1


@pytest.mark.parametrize(("answer", "outcome", "retry_after"), [
    (Answer(400, "BadDeviceToken"), Outcome.INVALID_TOKEN, None),
    (Answer(410, "Unregistered", timestamp=1_700_000_000_000), Outcome.INVALID_TOKEN, None),
    (Answer(429, "TooManyRequests", retry_after="17"), Outcome.RETRY, 17),
    (Answer(503, "ServiceUnavailable", retry_after="120"), Outcome.RETRY, 120),
    (Answer(413, "PayloadTooLarge"), Outcome.FAILED, None),
])
async def test_scripted_errors(apns, registry, answer, outcome, retry_after):
    dev = device()
    apns.answer(dev.token, answer)
    result = await send(registry, dev)
    assert result.outcome is outcome and result.retry_after == retry_after
    assert answer.reason in result.detail
    if answer.timestamp:
        assert result.invalid_since == 1_700_000_000


async def test_expired_provider_token_is_minted_again_then_sent(apns, registry):
    first, second = device(), device()
    assert (await send(registry, first)).outcome is Outcome.DELIVERED
    apns.expire_tokens()
    assert (await send(registry, second)).outcome is Outcome.DELIVERED
    old, refused, accepted = apns.requests
    assert refused.status == 403 and refused.auth == old.auth
    assert accepted.status == 200 and accepted.auth != old.auth and accepted.token == second.token


async def test_a_long_body_is_shortened_to_fit_4096_bytes(apns, registry):
    dev = device()
    result = await send(registry, dev, job(message="ß€" * 3000, data={"k": "v"}))
    assert result.outcome is Outcome.DELIVERED
    (got,) = apns.requests
    assert 4000 < len(got.body) <= 4096
    assert got.payload["aps"]["alert"]["body"].endswith("…")
    assert got.payload["data"] == {"k": "v"}


async def test_unreachable_server_is_a_retry(apns, apps, tls):
    closed = {**apps[0], "port": 1}  # nothing listens there
    reg = Registry.from_config([closed])
    try:
        result = await send(reg, device())
    finally:
        await reg.close()
    assert result.outcome is Outcome.RETRY and "connection" in result.detail
