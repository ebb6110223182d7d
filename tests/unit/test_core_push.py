"""Push rules without I/O: jobs, policy, payload limits, outcome mapping, backoff."""

import json

import pytest
from hypothesis import given
from hypothesis import strategies as st

from tidings.core.push import (
    APNS_MAX_BYTES,
    ELLIPSIS,
    Decision,
    Device,
    Outcome,
    PushJob,
    apns_options,
    apns_payload,
    apns_result,
    apns_size,
    backoff,
    collapse_id,
    console_text,
    decide,
    fcm_message,
    fcm_result,
    parse_retry_after,
    push_options,
)
from tidings.core.requests import PushOptions

UID = "0b9f5a3e-6a1b-4c55-9d8e-1f2a3b4c5d6e"


def job(**kw) -> PushJob:
    base = dict(uid=UID, user_id="u1", seq=7, message="hello", title="Hi", type="comment")
    return PushJob(**(base | kw))


def test_stored_options_become_push_options():
    assert push_options({"when": "always", "badge": 3}) == PushOptions(when="always", badge=3)
    assert push_options(None) == PushOptions()
    with pytest.raises(ValueError):
        push_options({"badge": "lots"})


@given(st.one_of(st.none(), st.text(min_size=1, max_size=64)))
def test_every_send_has_a_collapse_id_the_uid_unless_the_producer_set_one(producer_id):
    j = job(push=PushOptions(collapse_id=producer_id))
    expected = producer_id or UID
    assert collapse_id(j) == expected
    assert apns_options(j).collapse_id == expected
    m = fcm_message(j, "tok", now=0)["message"]
    assert m["android"]["collapse_key"] == expected
    assert m["android"]["notification"]["tag"] == expected
    assert m["apns"]["headers"]["apns-collapse-id"] == expected


@pytest.mark.parametrize(("when", "online", "expected"), [
    ("offline", False, Decision.NOW),
    ("offline", True, Decision.NEVER),
    ("always", True, Decision.NOW),
    ("never", False, Decision.NEVER),
    ("unread_after", True, Decision.LATER),
    ("unread_after", False, Decision.LATER),
])
def test_decide(when, online, expected):
    assert decide(PushOptions(when=when, after=1), online) is expected


def test_apns_payload_shape():
    p = apns_payload(job(data={"post": 4},
                         push=PushOptions(badge=2, sound="ping", extra={"deep": "x", "aps": 1})))
    assert p["aps"] == {"alert": {"body": "hello", "title": "Hi"}, "badge": 2, "sound": "ping"}
    assert p["uid"] == UID and p["seq"] == 7 and p["type"] == "comment"
    assert p["data"] == {"post": 4} and p["deep"] == "x"


def test_apns_body_is_shortened_on_a_utf8_boundary():
    body = "é€😀" * 2000  # 2, 3 and 4 byte characters
    p = apns_payload(job(message=body))
    assert apns_size(p) <= APNS_MAX_BYTES
    assert apns_size(p) > APNS_MAX_BYTES - 8  # shortened, not emptied
    out = p["aps"]["alert"]["body"]
    assert out.endswith(ELLIPSIS) and body.startswith(out.removesuffix(ELLIPSIS))


def test_apns_escaped_body_still_fits():
    p = apns_payload(job(message='"\\\n' * 3000))
    assert apns_size(p) <= APNS_MAX_BYTES
    assert p["aps"]["alert"]["body"].endswith(ELLIPSIS)


def test_apns_drops_custom_data_before_failing():
    p = apns_payload(job(message="short", data={"blob": "x" * 5000}))
    assert apns_size(p) <= APNS_MAX_BYTES
    assert "data" not in p and p["uid"] == UID


def test_apns_title_is_shortened_last():
    p = apns_payload(job(message="body", title="T" * 5000))
    assert apns_size(p) <= APNS_MAX_BYTES
    assert p["aps"]["alert"]["body"] == "" and p["aps"]["alert"]["title"].endswith(ELLIPSIS)


def test_apns_small_payload_is_untouched():
    p = apns_payload(job(message="ok"))
    assert p["aps"]["alert"]["body"] == "ok"


def test_fcm_message_blocks_and_string_data():
    m = fcm_message(job(data={"n": 1}, push=PushOptions(
        badge=4, sound="s", collapse_id="c1", ttl=60, extra={"flag": True, "s": "v"})),
        "tok", now=1000.0)["message"]
    assert m["token"] == "tok"
    assert m["notification"] == {"body": "hello", "title": "Hi"}
    assert m["data"] == {"uid": UID, "seq": "7", "type": "comment", "data": '{"n":1}',
                         "flag": "true", "s": "v"}
    assert all(isinstance(v, str) for v in m["data"].values())
    assert m["android"] == {"priority": "high", "ttl": "60s", "collapse_key": "c1",
                            "notification": {"tag": "c1", "sound": "s", "notification_count": 4}}
    assert m["apns"]["headers"]["apns-expiration"] == "1060"
    assert m["apns"]["headers"]["apns-collapse-id"] == "c1"
    assert m["apns"]["payload"] == {"aps": {"sound": "s", "badge": 4}}
    assert m["webpush"]["headers"]["TTL"] == "60"


def test_fcm_message_is_capped():
    m = fcm_message(job(message="ü" * 4000), "tok", now=0)["message"]
    size = len(json.dumps({"notification": m["notification"], "data": m["data"]},
                          ensure_ascii=False, separators=(",", ":")).encode())
    assert 4000 < size <= 4096
    assert m["notification"]["body"].endswith(ELLIPSIS)


def test_console_text_uses_the_platform_payload():
    out = json.loads(console_text(job(), Device(1, "u1", "fcm", "tok"), now=0))
    assert out["payload"]["message"]["token"] == "tok"
    out = json.loads(console_text(job(), Device(2, "u1", "apns", "ab" * 32), now=0))
    assert out["payload"]["aps"]["alert"]["body"] == "hello"


@pytest.mark.parametrize(("status", "reason", "outcome"), [
    (200, None, Outcome.DELIVERED),
    (400, "BadDeviceToken", Outcome.INVALID_TOKEN),
    (400, "DeviceTokenNotForTopic", Outcome.INVALID_TOKEN),
    (410, "Unregistered", Outcome.INVALID_TOKEN),
    (429, "TooManyRequests", Outcome.RETRY),
    (503, "ServiceUnavailable", Outcome.RETRY),
    (500, "InternalServerError", Outcome.RETRY),
    (403, "ExpiredProviderToken", Outcome.RETRY),
    (403, "InvalidProviderToken", Outcome.FAILED),
    (413, "PayloadTooLarge", Outcome.FAILED),
    (400, "BadCollapseId", Outcome.FAILED),
])
def test_apns_result(status, reason, outcome):
    assert apns_result(status, reason).outcome is outcome


def test_apns_unregistered_carries_its_timestamp_and_retry_after_passes_through():
    assert apns_result(410, "Unregistered", 1_700_000_000_000).invalid_since == 1_700_000_000
    assert apns_result(503, "ServiceUnavailable", retry_after=7).retry_after == 7


def fcm_error(status: int, code: str, message: str = "") -> dict:
    return {"error": {"code": status, "message": message, "status": code, "details": [
        {"@type": "type.googleapis.com/google.firebase.fcm.v1.FcmError", "errorCode": code}]}}


@pytest.mark.parametrize(("status", "body", "outcome"), [
    (200, {"name": "projects/p/messages/1"}, Outcome.DELIVERED),
    (404, fcm_error(404, "UNREGISTERED"), Outcome.INVALID_TOKEN),
    (400, fcm_error(400, "INVALID_ARGUMENT", "The registration token is not a valid FCM"
                    " registration token"), Outcome.INVALID_TOKEN),
    (400, fcm_error(400, "INVALID_ARGUMENT", "Invalid JSON payload received."), Outcome.FAILED),
    (403, fcm_error(403, "SENDER_ID_MISMATCH"), Outcome.INVALID_TOKEN),
    (429, fcm_error(429, "QUOTA_EXCEEDED"), Outcome.RETRY),
    (503, fcm_error(503, "UNAVAILABLE"), Outcome.RETRY),
    (502, None, Outcome.RETRY),
    (401, fcm_error(401, "THIRD_PARTY_AUTH_ERROR"), Outcome.FAILED),
])
def test_fcm_result(status, body, outcome):
    assert fcm_result(status, body).outcome is outcome


def test_parse_retry_after():
    assert parse_retry_after("12", now=0) == 12
    assert parse_retry_after("Thu, 01 Jan 1970 00:01:40 GMT", now=40) == 60
    assert parse_retry_after("soon", now=0) is None
    assert parse_retry_after(None, now=0) is None


def test_backoff_grows_with_jitter_within_bounds_and_honours_retry_after():
    assert backoff(1, 0.0, base=4) == 2 and backoff(1, 0.999, base=4) < 4
    assert backoff(3, 0.0, base=4) == 8 and backoff(3, 0.999, base=4) < 16
    assert backoff(30, 0.999, base=4, cap=100) < 100
    assert backoff(1, 0.5, base=4, retry_after=50) == 50
