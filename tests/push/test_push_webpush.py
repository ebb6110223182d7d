"""The Web Push provider and worker against the fake push service, which decrypts every message
and checks its VAPID token: payloads, headers, answers, deactivation, retries, SSRF at send."""

from __future__ import annotations

import ssl
import time
import uuid

import pytest
from push_helpers import jobs_of, outcomes

from tidings.core.errors import ConfigError
from tidings.core.ids import webpush_token
from tidings.core.push import Device, Outcome, PushJob
from tidings.core.requests import PushOptions
from tidings.core.webpush import WEBPUSH_MAX_BYTES, HostPolicy, webpush_payload
from tidings.push.registry import Registry, WebPushSetup, parse_config
from tidings.push.vapid import Vapid, generate, load_key
from tidings.push.webpush import WebPushProvider
from tidings.workers.push import PushWorker, WorkerConfig

from fakes.fake_webpush import Answer, Browser
from helpers import store_publish

SUBJECT = "mailto:ops@example.com"
LOOPBACK = ("localhost", "127.0.0.1", "::1")  # what the tests' setting allows
JOB = PushJob(uid="0b9f5a3e-6a1b-4c55-9d8e-1f2a3b4c5d6e", user_id="u1", seq=3, message="hello",
              title="Hi", type="comment", data={"post": 1},
              push=PushOptions(badge=2, sound="ding", ttl=60, collapse_id="thread-9",
                               extra={"url": "/inbox/3"}))


def setup(vapid_keys, hosts=LOOPBACK) -> WebPushSetup:
    return WebPushSetup(Vapid(load_key(vapid_keys[0]), SUBJECT), HostPolicy.parse(hosts))


@pytest.fixture
async def make_provider(vapid_keys, tls):
    made: list[WebPushProvider] = []

    def make(hosts=LOOPBACK) -> WebPushProvider:
        s = setup(vapid_keys, hosts)
        assert s.vapid is not None
        p = WebPushProvider(s.vapid, s.policy,
                            ssl_context=ssl.create_default_context(cafile=str(tls.ca)))
        made.append(p)
        return p

    yield make
    for p in made:
        await p.close()


def device(browser: Browser, user: str = "u1", id: int = 1) -> Device:
    sub = browser.subscription()
    return Device(id, user, "webpush", webpush_token(browser.endpoint), None,
                  browser.endpoint, sub["keys"]["p256dh"], sub["keys"]["auth"])


async def test_the_service_decrypts_the_payload_and_accepts_the_vapid_token(
        webpush, make_provider, vapid_keys):
    sub_id, browser = webpush.subscribe()
    before = time.time()
    result = await make_provider().send(device(browser), JOB)
    assert result.outcome is Outcome.DELIVERED, webpush.received[-1].problem
    [got] = webpush.for_sub(sub_id)
    assert got.status == 201
    assert got.payload == webpush_payload(JOB) == {
        "url": "/inbox/3", "data": {"post": 1}, "uid": JOB.uid, "seq": 3, "type": "comment",
        "title": "Hi", "body": "hello", "tag": "thread-9", "badge": 2, "sound": "ding"}
    assert got.headers["TTL"] == "60" and got.headers["Urgency"] == "high"
    assert got.headers["Topic"] == "thread-9"
    assert got.headers["Content-Encoding"] == "aes128gcm"
    assert got.claims is not None
    assert got.claims["aud"] == f"https://localhost:{webpush.port}"
    assert got.claims["sub"] == SUBJECT
    assert before + 11 * 3600 < got.claims["exp"] <= time.time() + 24 * 3600
    assert got.headers["Authorization"].endswith(f", k={vapid_keys[1]}")


async def test_default_ttl_and_a_topic_from_the_uid(webpush, make_provider):
    sub_id, browser = webpush.subscribe()
    job = PushJob(uid=str(uuid.uuid4()), user_id="u1", message="m")
    assert (await make_provider().send(device(browser), job)).outcome is Outcome.DELIVERED
    [got] = webpush.for_sub(sub_id)
    assert got.headers["TTL"] == str(28 * 24 * 3600)
    assert got.headers["Topic"] == uuid.UUID(job.uid).hex
    assert got.payload["tag"] == job.uid and got.payload["title"] is None


@pytest.mark.parametrize(("data", "kept"), [({"blob": "x" * 2000}, True),
                                            ({"blob": "x" * 3950}, False)])
async def test_a_long_message_is_shortened_to_fit_4096_bytes(webpush, make_provider, data, kept):
    """The body is shortened first; the custom data goes only if that is not enough."""
    sub_id, browser = webpush.subscribe()
    job = PushJob(uid=str(uuid.uuid4()), user_id="u1", message="é" * 4000, data=data)
    assert (await make_provider().send(device(browser), job)).outcome is Outcome.DELIVERED
    [got] = webpush.for_sub(sub_id)
    assert len(got.body) <= 4096 and len(got.plaintext or b"") <= WEBPUSH_MAX_BYTES
    assert got.payload["body"].endswith("…") and ("data" in got.payload) is kept


@pytest.mark.parametrize(("answer", "outcome", "retry_after"), [
    (Answer(404, text="subscription not found"), Outcome.INVALID_TOKEN, None),
    (Answer(410, text="subscription expired"), Outcome.INVALID_TOKEN, None),
    (Answer(429, retry_after="17", text="slow down"), Outcome.RETRY, 17),
    (Answer(503, retry_after="5"), Outcome.RETRY, 5),
    (Answer(500), Outcome.RETRY, None),
    (Answer(400, text="bad message"), Outcome.FAILED, None),
])
async def test_answers(webpush, make_provider, answer, outcome, retry_after):
    sub_id, browser = webpush.subscribe()
    webpush.answer(sub_id, answer)
    result = await make_provider().send(device(browser), JOB)
    assert (result.outcome, result.retry_after) == (outcome, retry_after)
    assert result.detail.startswith(str(answer.status)) and answer.text in result.detail


async def test_a_vapid_key_the_subscription_was_not_made_with_is_refused(webpush, make_provider,
                                                                         vapid_keys):
    _, browser = webpush.subscribe()
    webpush.application_server_key = generate()[1]  # made with another server's key
    try:
        result = await make_provider().send(device(browser), JOB)
    finally:
        webpush.application_server_key = vapid_keys[1]
    assert result.outcome is Outcome.FAILED and result.detail.startswith("403")


async def test_a_name_resolving_to_loopback_is_refused_at_send_unless_listed(
        webpush, make_provider):
    sub_id, browser = webpush.subscribe()  # https://localhost:PORT/...
    result = await make_provider(hosts=("localhost",)).send(device(browser), JOB)
    assert result.outcome is Outcome.FAILED
    assert "refused" in result.detail and "127.0.0.1" in result.detail
    assert webpush.received == []
    listed = await make_provider(hosts=("localhost", "127.0.0.1")).send(device(browser), JOB)
    assert listed.outcome is Outcome.DELIVERED
    assert len(webpush.for_sub(sub_id)) == 1


async def test_an_address_literal_is_sent_to_only_when_listed(webpush, make_provider):
    sub_id, browser = webpush.subscribe(host="127.0.0.1")
    refused = await make_provider(hosts=("localhost", "*")).send(device(browser), JOB)
    assert refused.outcome is Outcome.FAILED and "refused" in refused.detail
    assert webpush.received == []
    ok = await make_provider(hosts=("127.0.0.0/8",)).send(device(browser), JOB)
    assert ok.outcome is Outcome.DELIVERED, webpush.received
    assert webpush.for_sub(sub_id)[0].claims["aud"] == f"https://127.0.0.1:{webpush.port}"


async def test_an_endpoint_no_longer_allowed_fails_without_a_request(webpush, make_provider):
    _, browser = webpush.subscribe()
    result = await make_provider(hosts=("fcm.googleapis.com",)).send(device(browser), JOB)
    assert result.outcome is Outcome.FAILED and "not a known push service" in result.detail
    assert webpush.received == []


async def test_a_key_off_the_curve_deactivates_without_a_request(webpush, make_provider):
    _, browser = webpush.subscribe()
    dev = device(browser)
    bad = Device(dev.id, dev.user_id, dev.platform, dev.token, None, dev.endpoint,
                 "BA" + "A" * 84 + "E", dev.auth)  # well formed, not a P-256 point
    result = await make_provider().send(bad, JOB)
    assert result.outcome is Outcome.INVALID_TOKEN and "P-256" in result.detail
    assert webpush.received == []


async def test_an_unreachable_service_is_a_retry(make_provider):
    browser = Browser("https://localhost:1/push/x")
    result = await make_provider().send(device(browser), JOB)
    assert result.outcome is Outcome.RETRY and "connection" in result.detail


# -- through the worker and the database -----------------------------------------------------

async def add_subscription(pool, user: str, browser: Browser) -> int:
    keys = browser.subscription()["keys"]
    return await pool.fetchval(
        "INSERT INTO tidings_devices (user_id, platform, token, endpoint, p256dh, auth)"
        " VALUES ($1, 'webpush', $2, $3, $4, $5) RETURNING id",
        user, webpush_token(browser.endpoint), browser.endpoint, keys["p256dh"], keys["auth"])


@pytest.fixture
async def make_worker(redis, pool, vapid_keys, tls):
    await pool.execute("DELETE FROM tidings_push_jobs")
    registries = []

    def make(**cfg):
        registry = Registry.from_config(
            [{"platform": "webpush", "kind": "webpush", "ca_file": str(tls.ca)}],
            webpush=setup(vapid_keys))
        registries.append(registry)
        return PushWorker(pool, registry, WorkerConfig(name="w", **cfg))

    yield make
    for registry in registries:
        await registry.close()


async def test_gone_subscriptions_are_deactivated_and_429_is_retried_after_retry_after(
        user, pool, webpush, make_worker):
    subs = {name: webpush.subscribe() for name in ("ok", "gone", "missing", "busy")}
    ids = {name: await add_subscription(pool, user, b) for name, (_, b) in subs.items()}
    webpush.answer(subs["gone"][0], Answer(410))
    webpush.answer(subs["missing"][0], Answer(404))
    webpush.answer(subs["busy"][0], Answer(429, retry_after="40"))
    [uid] = await store_publish(pool, [user], {"when": "always", "badge": 1}, message="hi there")

    before = time.time()
    await make_worker(backoff_base=1).run(burst=True)

    got = {dev: outcome for outcome, dev, _ in await outcomes(pool, uid)}
    assert got == {ids["ok"]: "pushed", ids["gone"]: "deactivated",
                   ids["missing"]: "deactivated", ids["busy"]: "retry"}
    rows = {r["id"]: r for r in await pool.fetch(
        "SELECT id, active, deactivated_reason FROM tidings_devices WHERE user_id = $1", user)}
    assert not rows[ids["gone"]]["active"] and rows[ids["gone"]]["deactivated_reason"] == "410"
    assert not rows[ids["missing"]]["active"]
    assert rows[ids["ok"]]["active"] and rows[ids["busy"]]["active"]
    [job] = await jobs_of(pool, [uid])
    assert job["devices"] == [ids["busy"]] and job["attempt"] == 2
    assert job["due_at"].timestamp() >= before + 40  # Retry-After beats the 0.5-1 s backoff
    [ok] = webpush.for_sub(subs["ok"][0])
    assert (ok.payload["uid"], ok.payload["body"], ok.payload["badge"]) == (uid, "hi there", 1)


async def test_without_a_vapid_key_development_prints_web_pushes(capsys, webpush):
    registry = Registry.from_config(parse_config(None), webpush=WebPushSetup(None, HostPolicy()))
    _, browser = webpush.subscribe()
    app = registry.for_device(device(browser))
    assert app is not None and app.provider.name == "console"
    assert (await app.provider.send(device(browser), JOB)).outcome is Outcome.DELIVERED
    line = capsys.readouterr().out.strip()
    assert '"platform":"webpush"' in line and '"tag":"thread-9"' in line
    with pytest.raises(ConfigError, match="TIDINGS_VAPID_PRIVATE_KEY"):
        Registry.from_config([{"platform": "webpush", "kind": "webpush"}],
                             webpush=WebPushSetup(None, HostPolicy()))
