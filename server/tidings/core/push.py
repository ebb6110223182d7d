"""Push rules with no I/O: the job content, the policy, payloads, outcomes and backoff.

- A :class:`PushJob` is the content of one notification for one recipient
  user, built by the worker from the notification row and the publish's shared
  push options (:func:`push_options`); the worker resolves the user's active
  devices when it sends, so one job fans out to every device.
- :func:`decide` turns ``push.when`` and presence into send now / check later /
  never.
- :func:`apns_payload` and :func:`fcm_message` render a job for one device,
  within the 4096-byte limits: the body (then the title) is shortened on a
  UTF-8 boundary, and the custom data dropped, rather than a send failing.
  Every send carries a collapse id (:func:`collapse_id`: the producer's, else
  the notification uid), so a device shows a push repeated after a worker
  crash once.
- :func:`apns_result` and :func:`fcm_result` map the providers' answers to a
  :class:`SendResult`; :func:`backoff` spaces retries. Clocks and random numbers
  are passed in.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import dataclass
from email.utils import parsedate_to_datetime
from enum import StrEnum
from typing import Any

import msgspec

from .requests import PushOptions

APNS_MAX_BYTES = 4096
FCM_MAX_BYTES = 4096
ELLIPSIS = "…"


class PushJob(msgspec.Struct, omit_defaults=True):
    """The content pushed for one notification of one recipient user."""

    uid: str
    user_id: str
    message: str
    seq: int | None = None
    title: str | None = None
    type: str | None = None
    data: dict[str, Any] | None = None
    push: PushOptions = msgspec.field(default_factory=PushOptions)


def push_options(raw: Any) -> PushOptions:
    """The stored push options of a publish; raises ValueError when they are not valid."""
    try:
        return msgspec.convert(raw or {}, PushOptions)
    except msgspec.ValidationError as exc:
        raise ValueError(f"not push options: {exc}") from None


def collapse_id(job: PushJob) -> str:
    """What a device collapses repeated pushes by: the producer's id, else the uid."""
    return job.push.collapse_id or job.uid


# -- policy ------------------------------------------------------------------------------

class Decision(StrEnum):
    NOW = "now"  # enqueue a send
    LATER = "later"  # schedule an unread check at now + push.after
    NEVER = "never"


def decide(push: PushOptions, online: bool) -> Decision:
    """What to do with one recipient's push when a notification is published."""
    match push.when:
        case "never":
            return Decision.NEVER
        case "always":
            return Decision.NOW
        case "unread_after":
            return Decision.LATER
        case _:  # offline
            return Decision.NEVER if online else Decision.NOW


# -- devices and outcomes --------------------------------------------------------------------

@dataclass(frozen=True, slots=True)
class Device:
    id: int
    user_id: str
    platform: str  # "apns" | "fcm" | "webpush"
    token: str  # webpush: an id derived from the endpoint (core.webpush.device_token)
    app_id: str | None = None
    endpoint: str | None = None  # webpush: the subscription's endpoint and keys
    p256dh: str | None = None
    auth: str | None = None


class Outcome(StrEnum):
    DELIVERED = "delivered"  # the provider accepted it
    INVALID_TOKEN = "invalid_token"  # the token will never work again: deactivate the device
    RETRY = "retry"  # transient: send again after ``retry_after`` (or backoff)
    FAILED = "failed"  # permanent for this message; the device stays active


@dataclass(frozen=True, slots=True)
class SendResult:
    outcome: Outcome
    detail: str = ""
    retry_after: float | None = None  # seconds, from the provider's Retry-After
    invalid_since: float | None = None  # APNs 410: unix time the token stopped being valid


DELIVERED = SendResult(Outcome.DELIVERED)


def parse_retry_after(value: str | None, now: float) -> float | None:
    """Seconds to wait from a Retry-After header (delta seconds or an HTTP date)."""
    if not value:
        return None
    try:
        return max(0.0, float(value))
    except ValueError:
        pass
    try:
        return max(0.0, parsedate_to_datetime(value).timestamp() - now)
    except (TypeError, ValueError):
        return None


_APNS_INVALID = {"BadDeviceToken", "Unregistered", "DeviceTokenNotForTopic", "ExpiredToken"}


def apns_result(status: int, reason: str | None, timestamp: float | None = None,
                retry_after: float | None = None) -> SendResult:
    """An APNs answer as a result. ``timestamp`` is the 410 body's (milliseconds)."""
    if status == 200:
        return DELIVERED
    detail = f"{status} {reason or ''}".strip()
    if reason in _APNS_INVALID or status == 410:
        return SendResult(Outcome.INVALID_TOKEN, detail,
                          invalid_since=timestamp / 1000 if timestamp else None)
    if status == 429 or status >= 500 or reason == "ExpiredProviderToken":
        return SendResult(Outcome.RETRY, detail, retry_after)
    return SendResult(Outcome.FAILED, detail)


_FCM_RETRY = {"QUOTA_EXCEEDED", "UNAVAILABLE", "INTERNAL"}


def fcm_error_code(body: Any) -> str:
    """The FcmError ``errorCode`` of an error body, else its ``status``, else ''."""
    error = body.get("error") if isinstance(body, dict) else None
    if not isinstance(error, dict):
        return ""
    for detail in error.get("details") or ():
        if isinstance(detail, dict) and detail.get("errorCode"):
            return str(detail["errorCode"])
    return str(error.get("status") or "")


def fcm_result(status: int, body: Any, retry_after: float | None = None) -> SendResult:
    """An FCM v1 answer as a result (401 is handled by the provider: new token, send again)."""
    if status == 200:
        return DELIVERED
    code = fcm_error_code(body)
    message = body.get("error", {}).get("message", "") if isinstance(body, dict) else ""
    detail = f"{status} {code}".strip()
    if code in ("UNREGISTERED", "SENDER_ID_MISMATCH"):
        return SendResult(Outcome.INVALID_TOKEN, detail)
    # INVALID_ARGUMENT also covers a malformed message: only a bad token drops the device.
    if code == "INVALID_ARGUMENT" and "token" in str(message).lower():
        return SendResult(Outcome.INVALID_TOKEN, detail)
    if code in _FCM_RETRY or status == 429 or status >= 500:
        return SendResult(Outcome.RETRY, detail, retry_after)
    return SendResult(Outcome.FAILED, f"{detail} {message}".strip())


def backoff(attempt: int, rand: float, *, base: float = 5.0, cap: float = 3600.0,
            retry_after: float | None = None) -> float:
    """Seconds before retry number ``attempt`` (1 = after the first send).

    Exponential with "equal jitter": half of ``min(cap, base * 2**(attempt-1))``
    plus ``rand`` (in [0, 1)) times the other half; never less than Retry-After.
    """
    ceiling = min(cap, base * 2 ** (attempt - 1))
    return max(ceiling / 2 + rand * ceiling / 2, retry_after or 0.0)


# -- payloads ----------------------------------------------------------------------------

def _shorten(fits: Callable[[str], bool], text: str) -> str | None:
    """The longest prefix of ``text`` (cut on a character, so a UTF-8 boundary, and ending
    in an ellipsis) that ``fits``; None if even the empty text does not."""
    if fits(text):
        return text
    if not fits(""):
        return None
    lo, hi = 0, len(text)  # prefix lo fits, prefix hi does not
    while hi - lo > 1:
        mid = (lo + hi) // 2
        if fits(text[:mid] + ELLIPSIS):
            lo = mid
        else:
            hi = mid
    return text[:lo] + ELLIPSIS if lo else ""


def fit(build: Callable[[str, str | None, bool], dict[str, Any]], body: str,
         title: str | None, limit: int, size: Callable[[dict[str, Any]], int]) -> dict[str, Any]:
    """``build(body, title, with_data)`` within ``limit``: shorten the body; if that is not
    enough, drop the custom data; then shorten the title."""
    whole = build(body, title, True)
    if size(whole) <= limit:  # the common case: built and measured once
        return whole
    for with_data in (True, False):
        short = _shorten(lambda b, d=with_data: size(build(b, title, d)) <= limit, body)
        if short is not None:
            return build(short, title, with_data)
    short = _shorten(lambda t: size(build("", t, False)) <= limit, title or "")
    if short is None:
        raise ValueError("push payload over the limit with no text or data left")
    return build("", short, False)


def apns_size(payload: dict[str, Any]) -> int:
    """Bytes on the wire as aioapns encodes it (``json.dumps``, default separators)."""
    return len(json.dumps(payload, ensure_ascii=False).encode())


def apns_payload(job: PushJob, limit: int = APNS_MAX_BYTES) -> dict[str, Any]:
    """The APNs JSON: ``aps`` (alert, badge, sound), then ``uid``, ``seq``, ``type``,
    ``data`` and the ``push.extra`` keys at top level (``aps`` cannot be overridden)."""
    push = job.push

    def build(body: str, title: str | None, with_data: bool) -> dict[str, Any]:
        alert: dict[str, Any] = {"body": body}
        if title:
            alert["title"] = title
        aps: dict[str, Any] = {"alert": alert}
        if push.badge is not None:
            aps["badge"] = push.badge
        if push.sound:
            aps["sound"] = push.sound
        out: dict[str, Any] = {"uid": job.uid, "seq": job.seq, "type": job.type}
        if with_data:
            if job.data is not None:
                out["data"] = job.data
            out.update(push.extra or {})
        out["aps"] = aps
        return out

    return fit(build, job.message, job.title, limit, apns_size)


@dataclass(frozen=True, slots=True)
class ApnsOptions:
    """The request headers aioapns sets from NotificationRequest fields."""

    push_type: str = "alert"
    priority: int = 10
    ttl: int | None = None  # aioapns sends apns-expiration = now + ttl
    collapse_id: str | None = None


def apns_options(job: PushJob) -> ApnsOptions:
    return ApnsOptions(ttl=job.push.ttl, collapse_id=collapse_id(job))


def _data_value(value: Any) -> str:
    return value if isinstance(value, str) else json.dumps(value, separators=(",", ":"))


def fcm_message(job: PushJob, token: str, now: float,
                limit: int = FCM_MAX_BYTES) -> dict[str, Any]:
    """The FCM v1 ``{"message": ...}`` body for one registration token.

    ``data`` values are strings (FCM requires it): ``uid``, ``seq``, ``type``,
    ``data`` (JSON) and each ``push.extra`` key (non-strings as JSON). The
    notification and data together stay within ``limit`` bytes.
    """
    push = job.push
    ttl = push.ttl

    def build(body: str, title: str | None, with_data: bool) -> dict[str, Any]:
        data: dict[str, Any] = {"uid": job.uid}
        if job.seq is not None:
            data["seq"] = str(job.seq)
        if job.type:
            data["type"] = job.type
        if with_data:
            if job.data is not None:
                data["data"] = _data_value(job.data)
            data.update((str(k), _data_value(v)) for k, v in (push.extra or {}).items())
        notification = {"body": body} | ({"title": title} if title else {})
        return {"notification": notification, "data": data}

    message = fit(build, job.message, job.title, limit,
                   lambda p: len(msgspec.json.encode(p)))  # compact, as sent
    android: dict[str, Any] = {"priority": "high"}
    android_note: dict[str, Any] = {}
    apns_headers = {"apns-priority": "10", "apns-push-type": "alert"}
    aps: dict[str, Any] = {}
    webpush_headers = {"Urgency": "high"}
    if ttl is not None:
        android["ttl"] = f"{ttl}s"
        apns_headers["apns-expiration"] = str(int(now) + ttl)
        webpush_headers["TTL"] = str(ttl)
    collapse = collapse_id(job)
    android["collapse_key"] = collapse
    android_note["tag"] = collapse
    apns_headers["apns-collapse-id"] = collapse
    if push.sound:
        android_note["sound"] = push.sound
        aps["sound"] = push.sound
    if push.badge is not None:
        android_note["notification_count"] = push.badge
        aps["badge"] = push.badge
    if android_note:
        android["notification"] = android_note
    apns: dict[str, Any] = {"headers": apns_headers}
    if aps:
        apns["payload"] = {"aps": aps}
    message.update(token=token, android=android, apns=apns,
                   webpush={"headers": webpush_headers})
    return {"message": message}


def console_text(job: PushJob, device: Device, now: float,
                 payload: dict[str, Any] | None = None) -> str:
    """What the console provider prints: one JSON line with the device's platform payload
    (``payload`` when given: the Web Push JSON)."""
    if payload is None:
        payload = (apns_payload(job) if device.platform == "apns"
                   else fcm_message(job, device.token, now))
    return json.dumps({"platform": device.platform, "app_id": device.app_id,
                       "device_id": device.id, "payload": payload},
                      ensure_ascii=False, separators=(",", ":"))
