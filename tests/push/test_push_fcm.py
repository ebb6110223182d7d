"""The FCM HTTP v1 provider against the fake OAuth2 token endpoint and send endpoint."""

import pytest

from tidings.core.push import Device, Outcome, PushJob
from tidings.core.requests import PushOptions
from tidings.push.fcm import FCMProvider

from fakes.fake_fcm import Answer


@pytest.fixture
async def provider(fcm):
    p = FCMProvider(fcm.account, token_url=fcm.token_url, api_url=fcm.url)
    yield p
    await p.close()


def device(token="fcm-token-0123456789abcdef") -> Device:
    return Device(1, "u1", "fcm", token)


JOB = PushJob(uid="0b9f5a3e-6a1b-4c55-9d8e-1f2a3b4c5d6e", user_id="u1", seq=3, message="hello",
              title="Hi", type="comment", data={"post": 1},
              push=PushOptions(badge=1, sound="ding", ttl=60, collapse_id="c",
                               extra={"n": 5}))


async def test_send_mints_one_cached_token_and_posts_the_v1_message(fcm, provider):
    assert (await provider.send(device(), JOB)).outcome is Outcome.DELIVERED
    assert (await provider.send(device("fcm-other-0123456789abcd"), JOB)).outcome \
        is Outcome.DELIVERED
    (claims,) = fcm.token_requests
    assert claims["exp"] - claims["iat"] == 3600
    first = fcm.sent[0]
    assert first.access_token == "ya29.fake-1" and first.status == 200
    message = first.body["message"]
    assert message["token"] == device().token
    assert message["data"] == {"uid": JOB.uid, "seq": "3", "type": "comment",
                               "data": '{"post":1}', "n": "5"}
    assert message["android"]["ttl"] == "60s" and message["apns"]["payload"]["aps"]["badge"] == 1


async def test_a_token_near_expiry_is_minted_again(fcm, provider):
    fcm.expires_in = 200  # inside the 300 s refresh margin: never reused
    for _ in range(2):
        assert (await provider.send(device(), JOB)).outcome is Outcome.DELIVERED
    assert len(fcm.token_requests) == 2
    assert [s.access_token for s in fcm.sent] == ["ya29.fake-1", "ya29.fake-2"]


async def test_a_refused_token_is_minted_again_and_the_send_succeeds(fcm, provider):
    assert (await provider.send(device(), JOB)).outcome is Outcome.DELIVERED
    fcm.revoke_tokens()
    assert (await provider.send(device(), JOB)).outcome is Outcome.DELIVERED
    assert [s.status for s in fcm.sent] == [200, 401, 200]
    assert len(fcm.token_requests) == 2


@pytest.mark.parametrize(("answer", "outcome", "retry_after"), [
    (Answer(404, "UNREGISTERED", "Requested entity was not found."), Outcome.INVALID_TOKEN, None),
    (Answer(400, "INVALID_ARGUMENT", "The registration token is not a valid FCM registration"
            " token"), Outcome.INVALID_TOKEN, None),
    (Answer(429, "QUOTA_EXCEEDED", "Quota exceeded", retry_after="30"), Outcome.RETRY, 30),
    (Answer(503, "UNAVAILABLE", "The service is unavailable", retry_after="7"), Outcome.RETRY, 7),
    (Answer(500, "INTERNAL", "Internal error"), Outcome.RETRY, None),
    (Answer(403, "PERMISSION_DENIED", "no"), Outcome.FAILED, None),
])
async def test_error_codes(fcm, provider, answer, outcome, retry_after):
    fcm.answer(device().token, answer)
    result = await provider.send(device(), JOB)
    assert result.outcome is outcome and result.retry_after == retry_after
    assert answer.code in result.detail


async def test_unreachable_token_endpoint_is_a_retry(fcm):
    p = FCMProvider(fcm.account, token_url="http://127.0.0.1:1/token", api_url=fcm.url)
    try:
        result = await p.send(device(), JOB)
    finally:
        await p.close()
    assert result.outcome is Outcome.RETRY and not fcm.sent
