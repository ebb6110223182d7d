"""The operator's console in the API description: its operations and the schemas of its answers.

:mod:`.openapi` adds :data:`ENDPOINTS` to the document and :data:`RESPONSES` to
its schemas; like the rest of the document, every answer is described exactly
(no extra properties), and Schemathesis checks it against the server.
"""

from __future__ import annotations

from typing import Any

from ..core import admin_schemas as a
from ..core import ids
from ..core import requests as s
from ..core.jsonvalues import MAX_INT
from ..core.typedefs import TYPE_NAME_PATTERN
from ..services.admin import RECIPIENTS_SHOWN
from .openapi_schemas import COUNTS

ADMIN = [{"adminKey": []}]
SECURITY_SCHEME = {"type": "http", "scheme": "bearer",
                   "description": "an admin key of TIDINGS_ADMIN_KEYS (not a producer key)"}
_JSON_IN = (400, 413, 415)
_OFF = "404 when no admin key is configured (the console is off)"
_STR = {"type": "string"}
_NSTR = {"type": ["string", "null"]}
_TIME = {"type": "string", "format": "date-time"}
_NTIME = {"anyOf": [{"type": "null"}, _TIME]}
_INT = {"type": "integer"}
_NINT = {"type": ["integer", "null"]}
_UID = {"name": "uid", "in": "path", "required": True,
        "schema": {"type": "string", "format": "uuid"}}
_TYPE = {"name": "name", "in": "path", "required": True,
         "description": "a declared type (404 unknown_type otherwise)",
         "schema": {"type": "string", "pattern": TYPE_NAME_PATTERN}}
_USER_ID = {"type": "string", "pattern": ids.USER_ID_PATTERN, "minLength": 1, "maxLength": 255}


def _q(name: str, schema: dict[str, Any], description: str,
       required: bool = False) -> dict[str, Any]:
    return {"name": name, "in": "query", "schema": schema, "description": description,
            "required": required}


_PAGE = [
    _q("limit", {"type": "integer", "minimum": 1, "maximum": a.MAX_LIMIT},
       f"rows per page ({a.DEFAULT_LIMIT} by default)"),
    _q("before", {"type": "integer", "minimum": 1, "maximum": MAX_INT},
       "only rows with a smaller id (pass the previous page's next_before)"),
]


def _obj(required: dict[str, Any], optional: dict[str, Any] | None = None) -> dict[str, Any]:
    return {"type": "object", "required": list(required),
            "properties": {**required, **(optional or {})}, "additionalProperties": False}


def _page_of(item: dict[str, Any]) -> dict[str, Any]:
    return _obj({"items": {"type": "array", "items": item},
                 "next_before": {"type": ["integer", "null"],
                                 "description": "pass as `before` for the next page"}})


_TALLY = _obj({"sent": _INT, "errors": _INT,
               "outcomes": {"type": "object", "additionalProperties": _INT}})

RESPONSES: dict[str, dict[str, Any]] = {
    "AdminUser": _obj({
        "user": _STR,
        "counts": _obj({**COUNTS, "last_seq": {"type": "integer", "minimum": 0}}),
        "notifications": {"type": "array", "items": _obj({
            "uid": {"type": "string", "format": "uuid"}, "seq": _INT, "type": _NSTR,
            "title": _NSTR, "message": _STR, "status": {"enum": ["ACTIVE", "REMOVED"]},
            "is_read": {"type": "boolean"}, "created_at": _TIME})},
        "devices": {"type": "array", "items": _obj({
            "id": _INT, "platform": _STR, "token": _STR, "app_id": _NSTR, "name": _NSTR,
            "active": {"type": "boolean"}, "deactivated_reason": _NSTR,
            "created_at": _TIME, "updated_at": _TIME, "last_push_at": _NTIME,
            "last_error": {"anyOf": [{"type": "null"}, _obj({
                "outcome": _STR, "detail": _NSTR, "at": _TIME})]}})},
        "sockets": {"type": "array", "description": "the live nodes holding the user's sockets",
                    "items": _obj({"node": _STR})},
        "preferences": {"$ref": "#/components/schemas/Preferences"},
        "profile": {"anyOf": [{"type": "null"}, {"$ref": "#/components/schemas/Profile"}]}}),
    "SubscribersSent": _obj({
        "type": _STR,
        "recipients": {"type": "integer", "minimum": 0,
                       "description": "subscribers the notification was published to"},
        "created": {"type": "integer", "minimum": 0, "description": "of them, stored now"},
        "pending": {"type": "integer", "minimum": 0,
                    "description": "of them, accepted and stored later (a large page)"},
        "notifications": {"type": "array", "description": "the first recipients' uids",
                          "maxItems": RECIPIENTS_SHOWN, "items": _obj({
                              "recipient": _STR, "uid": {"type": "string", "format": "uuid"},
                              "seq": _NINT})},
        "resume_after": {"type": ["string", "null"],
                         "description": "set when the send stopped midway: the last"
                                        " subscriber handled; send again with `after` set"
                                        " to it for the rest"}}),
    "Subscribers": _obj({
        "items": {"type": "array", "items": _STR, "description": "user ids, in order"},
        "next_after": {"type": ["string", "null"],
                       "description": "pass as `after` for the next page"}}),
    "DeadLetters": _page_of(_obj({
        "id": _INT, "uid": {"type": "string", "format": "uuid"}, "user_id": _STR,
        "title": _NSTR, "message": _STR, "attempt": _INT,
        "devices": {"type": ["array", "null"], "items": _INT}, "reason": _NSTR,
        "created_at": _TIME, "last_due_at": _TIME})),
    "Requeued": _obj({"requeued": {"type": "array", "items": _INT},
                      "not_found": {"type": "array", "items": _INT}}),
    "Discarded": _obj({"discarded": {"type": "array", "items": _INT},
                       "not_found": {"type": "array", "items": _INT}}),
    "PushApps": _obj({
        "window_seconds": _INT,
        "apps": {"type": "array", "items": _obj({
            "platform": _STR, "kind": _STR, "app_id": _NSTR, "default": {"type": "boolean"},
            "concurrency": _INT,
            "config": {"type": "object", "description": "the app's settings, secrets masked"},
            "credentials_expire_at": _NTIME, "problem": _NSTR, "last_hour": _TALLY})},
        "unconfigured": _TALLY}),
    "Nodes": _obj({"nodes": {"type": "array", "items": _obj({
        "node": _STR, "live": {"type": "boolean"}, "last_heartbeat": _TIME,
        "sockets": _NINT, "users": _NINT,
        "deliveries_per_second": {"type": ["number", "null"]}, "deliveries_total": _NINT,
        "started_at": _NTIME, "stats_at": _NTIME})}}),
    "AuditLog": _page_of(_obj({
        "id": _INT, "admin": {"type": "string", "description": "the admin key's id"},
        "action": {"enum": ["send", "requeue", "discard"]}, "target": _NSTR,
        "detail": {"type": "object"}, "at": _TIME})),
}

# (method, path, summary, security, request type, {status: body schema name}, errors, params)
ENDPOINTS: list[tuple[Any, ...]] = [
    ("get", "/admin", f"The operator's console page; {_OFF}", [], None, {200: "text/html"},
     (404,), []),
    ("post", "/api/v1/admin/notifications",
     "Send a notification as a publish would (push now: push.when \"always\"); audited",
     ADMIN, s.PublishRequest, {201: "Published", 202: "PublishedLater"},
     (*_JSON_IN, 401, 403, 404, 409, 503), []),
    ("get", "/api/v1/admin/types", "The declared notification types", ADMIN, None,
     {200: "TypeList"}, (401, 403, 404, 503), []),
    ("post", "/api/v1/admin/types/{name}/notifications",
     "Send a notification carrying the type to every subscriber of the type (users Tidings"
     " knows with a channel of the type on); audited. 202: part stored later, or stopped"
     " midway (resume_after)", ADMIN, a.TypeSend, {201: "SubscribersSent", 202: "SubscribersSent"},
     (*_JSON_IN, 401, 403, 404, 503), [_TYPE]),
    ("get", "/api/v1/admin/types/{name}/subscribers",
     "The subscribers of a type, in user id order", ADMIN, None, {200: "Subscribers"},
     (400, 401, 403, 404, 503),
     [_TYPE, _q("limit", {"type": "integer", "minimum": 1, "maximum": a.MAX_LIMIT},
                f"user ids per page ({a.DEFAULT_LIMIT} by default)"),
      _q("after", _USER_ID, "only users whose ids sort after it (the previous next_after)")]),
    ("get", "/api/v1/admin/user",
     "Look up a user: counts, latest notifications, devices (last push, last error), sockets,"
     " effective preferences, profile",
     ADMIN, None, {200: "AdminUser"}, (400, 401, 403, 404, 503),
     [_q("id", {"type": "string", "pattern": ids.USER_ID_PATTERN}, "the user id",
         required=True)]),
    ("get", "/api/v1/admin/notifications/{uid}/deliveries",
     "A notification's delivery log across channels", ADMIN, None, {200: "Deliveries"},
     (401, 403, 404, 503), [_UID]),
    ("get", "/api/v1/admin/dead-letters", "Push jobs kept as dead letters, newest first",
     ADMIN, None, {200: "DeadLetters"}, (400, 401, 403, 404, 503), _PAGE),
    ("post", "/api/v1/admin/dead-letters/requeue",
     "Requeue dead letters: due now, attempt 1; audited", ADMIN, a.JobIds,
     {200: "Requeued"}, (*_JSON_IN, 401, 403, 404, 503), []),
    ("post", "/api/v1/admin/dead-letters/discard", "Discard dead letters; audited", ADMIN,
     a.JobIds, {200: "Discarded"}, (*_JSON_IN, 401, 403, 404, 503), []),
    ("get", "/api/v1/admin/push-apps",
     "Push apps: configuration (secrets masked), sends and errors in the last hour,"
     " credentials' expiry", ADMIN, None, {200: "PushApps"}, (401, 403, 404, 503), []),
    ("get", "/api/v1/admin/nodes",
     "Nodes: sockets, users, deliveries per second, last heartbeat", ADMIN, None,
     {200: "Nodes"}, (401, 403, 404, 503), []),
    ("get", "/api/v1/admin/audit", "The audit log of admin actions, newest first", ADMIN,
     None, {200: "AuditLog"}, (400, 401, 403, 404, 503), _PAGE),
]
