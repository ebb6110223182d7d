"""JSON Schemas of what the API answers, its error statuses, and the limits it states.

The response schemas describe :mod:`tidings.core.replies` and the handlers'
replies exactly (no extra properties), so a test that checks every answer
against them (Schemathesis) catches drift. :func:`tighten` adds to the request
schemas generated from :mod:`tidings.core.requests` what the decoder enforces
beyond msgspec's types: no NUL in any text, the 64-bit number range, and the
rules between fields.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from ..core import errors, ids, webpush
from ..core import requests as s
from ..core.jsonvalues import MAX_DEPTH, MAX_INT, MIN_INT
from ..core.preferences import HHMM_PATTERN
from ..core.typedefs import CHANNELS

NO_NUL = "^[^\\u0000]*$"
_STR = {"type": "string"}
_NULLABLE_STR = {"type": ["string", "null"]}
_TIME = {"type": "string", "format": "date-time"}

#: Any JSON, as the free-form fields accept it (depth is stated, not expressible).
JSON_VALUE: dict[str, Any] = {
    "description": f"any JSON; objects and arrays nest at most {MAX_DEPTH} levels in the whole"
                   f" body, numbers lie within {MIN_INT}..{MAX_INT}, text holds no NUL",
    "anyOf": [
        {"type": ["null", "boolean"]},
        {"type": "number", "minimum": MIN_INT, "maximum": MAX_INT},
        {"type": "string", "pattern": NO_NUL},
        {"type": "array", "items": {"$ref": "#/components/schemas/JsonValue"}},
        {"$ref": "#/components/schemas/JsonObject"},
    ],
}
JSON_OBJECT: dict[str, Any] = {
    "type": "object", "propertyNames": {"pattern": NO_NUL},
    "additionalProperties": {"$ref": "#/components/schemas/JsonValue"},
}
_FREE = {"data", "changed_data", "custom_info", "extra"}


def _obj(required: dict[str, Any], optional: dict[str, Any] | None = None) -> dict[str, Any]:
    return {"type": "object", "required": list(required),
            "properties": {**required, **(optional or {})}, "additionalProperties": False}


COUNTS = {"total_notifications": {"type": "integer", "minimum": 0},
          "read_notifications": {"type": "integer", "minimum": 0},
          "unread_notifications": {"type": "integer", "minimum": 0}}

_PUBLISHED = _obj({
    "created": {"type": "integer", "minimum": 0},
    "notifications": {"type": "array", "items": _obj({
        "recipient": _STR, "uid": {"type": "string", "format": "uuid"},
        "seq": {"type": ["integer", "null"]}})}},
    {"delivered_live": {"type": "integer", "minimum": 0},
     "pending": {"type": "integer", "minimum": 1,
                 "description": "a large publish accepted in part (202): recipients not"
                                " stored yet (seq null), which the server stores later"}})
_SCHEDULED = _obj({"scheduled": {"const": True}, "id": {"type": "integer"}, "deliver_at": _TIME})
_ERROR = _obj({"code": {"enum": [k.code for k in errors.CATALOG.values() if not k.socket_only]},
               "message": _STR})


def _slot(status: dict[str, Any], answer: dict[str, Any]) -> dict[str, Any]:
    """One batch member's answer: ``answer`` with the ``status`` it would have had alone."""
    return {**answer, "required": ["status", *answer["required"]],
            "properties": {"status": status, **answer["properties"]}}


RESPONSES: dict[str, dict[str, Any]] = {
    "Notification": _obj({
        "id": {"type": ["integer", "null"]}, "uid": {"type": "string", "format": "uuid"},
        "seq": {"type": ["integer", "null"]}, "user": _obj({"id": _STR}),
        "notification": _obj({
            "message": _STR, "model": _NULLABLE_STR, "instance": _NULLABLE_STR,
            "method": _NULLABLE_STR, "changed_data": {"type": ["object", "array", "null"]}}),
        "type": _NULLABLE_STR, "title": _NULLABLE_STR, "data": {"type": ["object", "null"]},
        "is_read": {"type": "boolean"},
        "custom_info": {"type": ["object", "array", "string", "null"]},
        "created_by": _NULLABLE_STR, "status": {"enum": ["ACTIVE", "REMOVED"]},
        "created_at": _TIME, "updated_at": _TIME}),
    "InboxPage": _obj({
        **COUNTS, "page": {"type": "integer"}, "page_size": {"type": "integer"},
        "next_before": {"type": ["integer", "null"],
                        "description": "pass as `before` for the next page; null at the end"},
        "notifications": {"type": "array",
                          "items": {"$ref": "#/components/schemas/Notification"}}}),
    "ActionResult": _obj({"updated": {"type": "integer", "minimum": 0}, **COUNTS}),
    "Removed": _obj({"uid": {"type": "string", "format": "uuid"},
                     "status": {"const": "REMOVED"}}),
    "Device": _obj({
        "token": _STR, "platform": {"enum": ["apns", "fcm", "webpush"]},
        "app_id": _NULLABLE_STR, "name": _NULLABLE_STR, "active": {"type": "boolean"},
        "deactivated_reason": _NULLABLE_STR, "created_at": _TIME, "updated_at": _TIME,
        "endpoint": {**_NULLABLE_STR, "description": "a Web Push subscription's endpoint;"
                                                     " null for APNs and FCM"}}),
    "DeviceList": _obj({"devices": {"type": "array",
                                    "items": {"$ref": "#/components/schemas/Device"}}}),
    "Published": _PUBLISHED,
    "Scheduled": _SCHEDULED,
    "Deliveries": _obj({
        "uid": {"type": "string", "format": "uuid"}, "recipient": _STR,
        "deliveries": {"type": "array", "items": _obj({
            "channel": _STR, "outcome": _STR,
            "device": {"anyOf": [{"type": "null"}, _obj({
                "id": {"type": "integer"}, "platform": _NULLABLE_STR, "token": _NULLABLE_STR,
                "app_id": _NULLABLE_STR})]},
            "detail": _NULLABLE_STR, "attempt": {"type": ["integer", "null"]},
            "at": _TIME})}}),
    "Token": _obj({"token": _STR, "expires_in": {"type": "integer", "minimum": 1}}),
    "WebPushKey": _obj({"public_key": {
        "type": "string", "pattern": webpush.P256DH_PATTERN,
        "description": "the uncompressed P-256 point, base64url: pass it to"
                       " pushManager.subscribe as applicationServerKey"}}),
    "Health": _obj({"status": {"const": "ok"}, "node": _STR}),
    "Readiness": _obj({"status": {"enum": ["ok", "unavailable"]},
                       "checks": {"type": "object",
                                  "additionalProperties": {"type": "string"}},
                       "down": {"type": "array", "items": {"enum": ["postgres", "redis"]}}}),
    "Error": _obj({"error": _ERROR}),
    "BatchPublished": _obj({"results": {"type": "array", "items": {"anyOf": [
        _slot({"enum": [201, 202]}, _PUBLISHED), _slot({"const": 202}, _SCHEDULED),
        _obj({"status": {"type": "integer", "minimum": 400, "maximum": 599},
              "error": _ERROR})]}}}),
    "Type": _obj({
        "name": _STR, "title": _STR,
        "channels": {"type": "object", "propertyNames": {"enum": list(CHANNELS)},
                     "additionalProperties": {"type": "boolean"}},
        "required": {"type": "boolean"},
        "push": {"anyOf": [{"type": "null"}, {"$ref": "#/components/schemas/PushOptions"}]},
        "digest": {"anyOf": [{"type": "null"}, {"$ref": "#/components/schemas/Digest"}]},
        "templates": {"$ref": "#/components/schemas/Templates"}}),
    "TypeList": _obj({"types": {"type": "array", "items": {"$ref": "#/components/schemas/Type"}}}),
    "Profile": _obj({
        "user_id": _STR, "email": _NULLABLE_STR, "name": _NULLABLE_STR,
        "locale": _NULLABLE_STR, "timezone": _NULLABLE_STR,
        "email_status": {"enum": ["ok", "bouncing"]},
        "email_bounce": {"anyOf": [{"type": "null"}, _obj(
            {"detail": _NULLABLE_STR, "at": {"type": ["string", "null"], "format": "date-time"}})]},
        "created_at": _TIME, "updated_at": _TIME}),
    "Preferences": _obj({
        "channels": _obj({c: {"type": "boolean"} for c in CHANNELS}),
        "types": {"type": "object", "additionalProperties": _obj({
            "title": _STR, "required": {"type": "boolean"},
            "channels": {"type": "object", "propertyNames": {"enum": list(CHANNELS)},
                         "additionalProperties": {"type": "boolean"}},
            "digest": {"anyOf": [{"type": "null"}, _obj({"window": {"type": "number"}})]}})},
        "quiet_hours": {"anyOf": [{"type": "null"}, _obj({
            "start": {"type": "string", "pattern": HHMM_PATTERN},
            "end": {"type": "string", "pattern": HHMM_PATTERN}})]},
        "version": {"type": "integer", "minimum": 0}}),
    "JsonValue": JSON_VALUE,
    "JsonObject": JSON_OBJECT,
}


#: Each error status an operation lists: its response's name and what it means.
_STATUSES = {
    400: ("BadRequest", "the body or query is invalid"),
    401: ("Unauthorized", "missing or bad credentials (with WWW-Authenticate: Bearer)"),
    403: ("Forbidden", "the credentials or the request's Host are refused"),
    404: ("NotFound", "not the caller's, or does not exist"),
    409: ("Conflict", "an earlier request with this idempotency_key stands in the way"),
    413: ("TooLarge", "the body or its free-form data is too large"),
    415: ("UnsupportedMediaType", "the body is not JSON (application/json or"
          " application/*+json; an absent Content-Type is read as JSON)"),
    429: ("RateLimited", "too many requests; Retry-After says the whole seconds to wait"),
    503: ("Unavailable", "PostgreSQL or Redis is down, nothing was done"),
}
#: Each error status: its response's name and its description, the catalog's codes of
#: that status with when each is given and what the client should do.
ERRORS = {status: (name, f"{meaning}. Codes: " + "; ".join(
    f"{k.code}: {k.when} (client: {k.action})" for k in errors.http_kinds(status)))
    for status, (name, meaning) in _STATUSES.items()}


def error_body(status: int) -> dict[str, Any]:
    """The schema of an error answer with ``status``: a code the catalog gives that status."""
    return _obj({"error": _obj({"code": {"enum": [k.code for k in errors.http_kinds(status)]},
                                "message": _STR})})


RETRY_AFTER = {"Retry-After": {"schema": {"type": "integer", "minimum": 1}}}

LIMITS = f"""Limits the server enforces (each refusal is a 4xx with a code):

- Bodies: at most {s.MAX_BODY_BYTES} bytes (413); JSON nests at most {MAX_DEPTH} levels of
  objects and arrays (400 too_deep); every number within the signed 64-bit range
  (400 number_out_of_range); no NUL in any text (400 nul_character).
- Publish: 1 to {s.MAX_RECIPIENTS} recipients; message up to {s.MAX_MESSAGE_CHARS} characters;
  data + changed_data + custom_info + push.extra at most {s.MAX_PAYLOAD_BYTES} bytes as JSON
  (413 data_too_large); delay and push.after at most {s.MAX_DELAY_SECONDS} seconds.
- Batch publish: 1 to {s.MAX_BATCH} objects in `notifications` (400 otherwise), the whole body
  within the body limit; each member has the limits of a publish, and its own answer.
- User ids (token `sub`, recipients, minted tokens): {ids.USER_ID_RULE} (integers 0 to 2^63-1
  are read as their decimal text).
- Device tokens: APNs {ids.APNS_TOKEN_PATTERN} (hex, 32 to 100 bytes); FCM {ids.FCM_TOKEN_PATTERN}.
- Web Push subscriptions: an https endpoint of at most {ids.MAX_ENDPOINT_CHARS} characters on a
  host TIDINGS_WEBPUSH_ALLOWED_HOSTS allows (by default {", ".join(webpush.KNOWN_HOSTS)}; never a
  private or loopback address unless listed: 400 endpoint_not_allowed); keys.p256dh a P-256
  public key and keys.auth 16 bytes, base64url (400 invalid_subscription_keys).
- Inbox pages: page 1 to {s.MAX_PAGE}, page_size 1 to {s.MAX_PAGE_SIZE}; up to {s.MAX_UIDS}
  notification_uids per action.
- Tokens: the `exp` claim is required and, like `nbf` and `iat`, a number.
"""



def tighten(components: dict[str, Any], timezones: Iterable[str]) -> dict[str, Any]:
    """The request schemas with what the decoder adds to their msgspec types (see module)."""
    out = {name: _walk(schema) for name, schema in components.items()}
    out["BatchRequest"]["properties"]["notifications"]["items"] = {
        "type": "object", "description": "a publish, as POST /api/v1/notifications takes it;"
        " a bad one is answered with its 4xx in its own slot, the others are stored"}
    out["PatchRequest"] |= {
        "if": {"properties": {"action_choice": {"enum": ["MARK_AS_READ", "MARK_AS_REMOVED"]}}},
        "then": {"required": ["notification_uids"],
                 "properties": {"notification_uids": {"minItems": 1}}}}
    endpoint = out["WebPushSubscription"]["properties"]["endpoint"]
    endpoint["pattern"] = webpush.endpoint_pattern(webpush.KNOWN_HOSTS)
    endpoint["description"] = ("an https URL on a known push service's host (the pattern"
                               " states the default TIDINGS_WEBPUSH_ALLOWED_HOSTS)")
    keys = out["WebPushKeys"]["properties"]
    keys["p256dh"]["pattern"] = webpush.P256DH_PATTERN
    keys["auth"]["pattern"] = webpush.AUTH_PATTERN
    out["PushOptions"] |= {
        "if": {"required": ["when"], "properties": {"when": {"const": "unread_after"}}},
        "then": {"required": ["after"], "properties": {"after": {"type": "number"}}}}
    out["PublishRequest"] |= {
        "if": {"required": ["persist"], "properties": {"persist": {"const": False}}},
        "then": {"properties": {
            "idempotency_key": {"type": "null"},
            "push": {"anyOf": [{"type": "null"}, {"not": {"required": ["when"], "properties": {
                "when": {"const": "unread_after"}}}}]}}}}
    out["ProfileRequest"]["properties"]["timezone"] = {"anyOf": [
        {"type": "null"}, {"enum": sorted(timezones),
                           "description": "an IANA time zone name this server knows"}],
        "default": None}
    return out


def _walk(schema: Any) -> Any:
    if isinstance(schema, list):
        return [_walk(item) for item in schema]
    if not isinstance(schema, dict):
        return schema
    out = {k: _walk(v) for k, v in schema.items() if k != "properties"}
    if "properties" in schema:
        out["properties"] = {k: _free(v) if k in _FREE else _walk(v)
                             for k, v in schema["properties"].items()}
        if "extra" in out["properties"]:
            out["properties"]["extra"] = _extra(out["properties"]["extra"])
    if out.get("type") == "string" and "pattern" not in out and "format" not in out:
        out["pattern"] = NO_NUL
    if out.get("type") == "integer":
        out.setdefault("minimum", MIN_INT)
        out.setdefault("maximum", MAX_INT)
    return out


def _extra(schema: dict[str, Any]) -> dict[str, Any]:
    """``push.extra``: a free-form object whose keys are not reserved (400 reserved_extra_key)."""
    reserved = "|".join(sorted(s.RESERVED_EXTRA_KEYS))
    prefixes = "|".join("".join(f"[{c.upper()}{c}]" for c in p)  # any case, plain ECMA regex
                        for p in s.RESERVED_EXTRA_PREFIXES)
    names = {"pattern": NO_NUL, "not": {"pattern": f"^({reserved})$|^({prefixes})"}}
    branches = [{**JSON_OBJECT, "propertyNames": names} if b.get("$ref", "").endswith(
        "/JsonObject") else b for b in schema["anyOf"]]
    return {**schema, "anyOf": branches,
            "description": "custom payload keys; not uid, seq, type, data, aps, from,"
                           " message_type, nor a key starting with google or gcm"}


def _free(schema: dict[str, Any]) -> dict[str, Any]:
    """A free-form field: its JSON types as msgspec states them, made of :data:`JSON_VALUE`."""
    types = [s.get("type") for s in schema.get("anyOf", [schema])]
    branches: list[dict[str, Any]] = []
    for t in types:
        if t == "object":
            branches.append({"$ref": "#/components/schemas/JsonObject"})
        elif t == "array":
            branches.append({"type": "array", "items": {"$ref": "#/components/schemas/JsonValue"}})
        elif t == "string":
            branches.append({"type": "string", "pattern": NO_NUL})
        elif t == "null":
            branches.append({"type": "null"})
    return {"anyOf": branches, "default": schema.get("default"),
            "description": JSON_VALUE["description"]}
