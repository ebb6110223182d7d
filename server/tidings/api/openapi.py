"""``/api/v1/openapi.json``: the OpenAPI 3.1 document of every HTTP endpoint.

Request bodies come from the same msgspec types that validate them (made
exact by :func:`~.openapi_schemas.tighten`); every status an operation can
answer is listed with its body's schema, and every limit the server enforces
is stated, so the document cannot drift from the server unnoticed: the test
suite runs Schemathesis against it.
"""

from __future__ import annotations

from typing import Any

import msgspec
from aiohttp import web

from .. import __version__
from ..core import ids
from ..core import requests as s
from ..core.jsonvalues import MAX_INT
from ..core.preferences import PreferencesPatch
from ..core.profiles import ProfileRequest
from ..core.typedefs import TYPE_NAME_PATTERN, TypeDefinition
from ..core.unsubscribe import PATH as ONE_CLICK_PATH
from ..services.profiles import known_timezones
from . import openapi_admin, unsubscribe
from .http import reply
from .openapi_schemas import ERRORS, LIMITS, RESPONSES, RETRY_AFTER, error_body, tighten

routes = web.RouteTableDef()

_USER = [{"userJWT": []}]
_PRODUCER = [{"apiKey": []}]
_ADMIN = [{"adminKey": []}]
_JSON_IN = (400, 413, 415)  # what any JSON body can add
_UID = {"name": "uid", "in": "path", "required": True,
        "schema": {"type": "string", "format": "uuid"}}
_TOKEN = {"name": "token", "in": "path", "required": True,
          "description": "an APNs or FCM token, or a Web Push device's token (webpush-...);"
                         " a path that is none of these is a 404",
          "schema": {"type": "string", "pattern": ids.FCM_TOKEN_PATTERN}}

_TYPE_NAME = {"name": "name", "in": "path", "required": True,
              "description": "a type name; a path that cannot be one is a 404 (400 on PUT)",
              "schema": {"type": "string", "pattern": TYPE_NAME_PATTERN}}
#: A user id that can stand in a path: no "/", and not "." or ".." (a URL resolves those).
USER_IN_PATH = "^(?!\\.\\.?$)[^/\\u0000-\\u001f\\u007f-\\u009f]{1,255}$"
_USER_ID = {"name": "user_id", "in": "path", "required": True,
            "description": "a user id (one holding \"/\" has no profile path)",
            "schema": {"type": "string", "pattern": USER_IN_PATH}}


def _q(name: str, schema: dict[str, Any], description: str) -> dict[str, Any]:
    return {"name": name, "in": "query", "schema": schema, "description": description}


_USER_OR_EMPTY = ids.USER_ID_PATTERN.replace("{1,", "{0,")
_LIST_QUERY = [
    _q("page", {"type": "integer", "minimum": 1, "maximum": s.MAX_PAGE},
       "page number (404 invalid_page past the last page)"),
    _q("page_size", {"type": "integer", "minimum": 1, "maximum": s.MAX_PAGE_SIZE},
       f"notifications per page ({s.DEFAULT_PAGE_SIZE} by default)"),
    _q("is_read", {"type": "boolean"}, "true or false; absent means both; anything else is 400"),
    _q("before", {"type": "integer", "minimum": 1, "maximum": MAX_INT},
       "only notifications with a smaller seq (cursor paging; see next_before)"),
]

# (method, path, summary, security, request type, {status: body schema name}, errors, params)
_Endpoint = tuple[str, str, str, Any, Any, dict[int, str | None], tuple[int, ...], list[Any]]
_ENDPOINTS: list[_Endpoint] = [
    ("get", "/api/v1/me/notifications", "List the caller's notifications, newest first",
     _USER, None, {200: "InboxPage"}, (400, 401, 404, 429, 503), _LIST_QUERY),
    ("patch", "/api/v1/me/notifications", "Mark read or remove some or all notifications",
     _USER, s.PatchRequest, {200: "ActionResult"}, (*_JSON_IN, 401, 429, 503), []),
    ("get", "/api/v1/me/notifications/{uid}", "One of the caller's notifications",
     _USER, None, {200: "Notification"}, (401, 404, 429, 503), [_UID]),
    ("patch", "/api/v1/me/notifications/{uid}",
     "Mark one notification read (the notification) or removed ({uid, status})",
     _USER, s.DetailPatch, {200: "NotificationOrRemoved"}, (*_JSON_IN, 401, 404, 429, 503),
     [_UID]),
    ("post", "/api/v1/me/devices",
     "Register a push device: 201 new for the caller, 200 the caller's already (active again)",
     _USER, s.DeviceRequest, {200: "Device", 201: "Device"}, (*_JSON_IN, 401, 429, 503), []),
    ("get", "/api/v1/me/devices", "List the caller's devices", _USER, None,
     {200: "DeviceList"}, (401, 429, 503), []),
    ("get", "/api/v1/me/devices/{token}", "One of the caller's devices", _USER, None,
     {200: "Device"}, (401, 404, 429, 503), [_TOKEN]),
    ("put", "/api/v1/me/devices/{token}", "Change a device's name, app or active flag",
     _USER, s.DeviceUpdate, {200: "Device"}, (*_JSON_IN, 401, 404, 429, 503), [_TOKEN]),
    ("delete", "/api/v1/me/devices/{token}", "Forget a device", _USER, None, {204: None},
     (401, 404, 429, 503), [_TOKEN]),
    ("post", "/api/v1/notifications",
     "Publish a notification: 201 stored; 202 live only (persist: false), scheduled (delay),"
     " or a large publish stored in part (pending: the rest is stored later)",
     _PRODUCER, s.PublishRequest, {201: "Published", 202: "PublishedLater"},
     (*_JSON_IN, 401, 409, 429, 503), []),
    ("post", "/api/v1/notifications/batch",
     f"Publish up to {s.MAX_BATCH} distinct notifications, each answered on its own, in order",
     _PRODUCER, s.BatchRequest, {200: "BatchPublished"}, (*_JSON_IN, 401, 429), []),
    ("get", "/api/v1/notifications/{uid}/deliveries",
     "Delivery outcomes of one published notification", _PRODUCER, None,
     {200: "Deliveries"}, (401, 404, 429, 503), [_UID]),
    ("post", "/api/v1/tokens",
     "Mint a user token with the server's HS256 secret (404 when it verifies public keys)",
     _PRODUCER, s.TokenRequest, {201: "Token"}, (*_JSON_IN, 401, 404, 429), []),
    ("get", "/api/v1/me/preferences",
     "The caller's effective channel preferences: types' defaults with their choices",
     _USER, None, {200: "Preferences"}, (401, 429, 503), []),
    ("patch", "/api/v1/me/preferences",
     "Change any part of the caller's preferences; answers the whole effective document"
     " (404 unknown_type for an undeclared type)",
     _USER, PreferencesPatch, {200: "Preferences"}, (*_JSON_IN, 401, 404, 429, 503), []),
    ("get", "/api/v1/types", "List the declared notification types", _PRODUCER, None,
     {200: "TypeList"}, (401, 429, 503), []),
    ("put", "/api/v1/types/{name}",
     "Declare a notification type: 201 new, 200 replaced (400 invalid_template)",
     _PRODUCER, TypeDefinition, {200: "Type", 201: "Type"}, (*_JSON_IN, 401, 429, 503),
     [_TYPE_NAME]),
    ("get", "/api/v1/types/{name}", "One notification type", _PRODUCER, None, {200: "Type"},
     (401, 404, 429, 503), [_TYPE_NAME]),
    ("delete", "/api/v1/types/{name}", "Remove a notification type", _PRODUCER, None,
     {204: None}, (401, 404, 429, 503), [_TYPE_NAME]),
    ("put", "/api/v1/users/{user_id}",
     "Create (201) or replace (200) a user's profile: e-mail, name, locale, timezone",
     _PRODUCER, ProfileRequest, {200: "Profile", 201: "Profile"},
     (*_JSON_IN, 401, 429, 503), [_USER_ID]),
    ("get", "/api/v1/users/{user_id}", "A user's profile, with the state of its address",
     _PRODUCER, None, {200: "Profile"}, (401, 404, 429, 503), [_USER_ID]),
    ("delete", "/api/v1/users/{user_id}", "Remove a user's profile", _PRODUCER, None,
     {204: None}, (401, 404, 429, 503), [_USER_ID]),
    ("get", "/api/v1/openapi.json", "This document", [], None, {200: "Document"}, (), []),
    ("get", "/api/v1/dev/token",
     "A user token for the demo page: dev mode only (else 404); on a loopback bind only for"
     " a Host naming a loopback address or the public URL's host (else 403)", [], None,
     {200: "Token"}, (400, 403, 404), [_q("user", {"type": "string", "pattern": _USER_OR_EMPTY},
                     "user id (alice when empty or absent)")]),
    ("get", "/", "The demo inbox page", [], None, {200: "text/html"}, (), []),
    ("get", "/static/tidings.js", "The JavaScript client (ES module)", [], None,
     {200: "text/javascript"}, (), []),
    ("get", "/static/tidings.css", "The stylesheet of the demo page and the console", [], None,
     {200: "text/css"}, (), []),
    ("get", "/api/v1/webpush/key",
     "The server's VAPID public key, the applicationServerKey of Web Push subscriptions"
     " (404 webpush_not_configured without TIDINGS_VAPID_PRIVATE_KEY)", [], None,
     {200: "WebPushKey"}, (404,), []),
    ("get", "/tidings-sw.js",
     "The Web Push service worker: shows each push, focuses or opens the inbox on click",
     [], None, {200: "text/javascript"}, (), []),
    ("get", "/healthz", "Liveness", [], None, {200: "Health"}, (), []),
    ("get", "/metrics",
     "This process's Prometheus metrics (text format 0.0.4) for an admin key"
     " (TIDINGS_ADMIN_KEYS); 404 with no admin key configured or while metrics are off"
     " (TIDINGS_METRICS=false)",
     _ADMIN, None, {200: "text/plain"}, (401, 403, 404), []),
    ("get", "/readyz", "Readiness: PostgreSQL and Redis answer", [], None,
     {200: "Readiness", 503: "Readiness"}, (), []),
    ("get", "/ws/me/notifications",
     "WebSocket of live notifications and counts (see the README for messages)",
     _USER, None, {101: None}, (400, 401),
     [_q("since", {"type": "integer", "minimum": 0, "maximum": MAX_INT},
         "replay notifications after this seq")]),
]

# Where an answer names a resource another operation takes (OpenAPI links; stateful tests).
_DEVICE_LINKS = {f"{verb}Device": {"operationId": f"{verb}_device",
                                    "parameters": {"token": "$response.body#/token"}}
                 for verb in ("get", "put", "delete")}
_LINKS: dict[tuple[str, str, int], dict[str, Any]] = {
    ("post", "/api/v1/me/devices", 200): _DEVICE_LINKS,
    ("post", "/api/v1/me/devices", 201): _DEVICE_LINKS,
    ("get", "/api/v1/me/notifications", 200): {
        f"{verb}Notification": {"operationId": f"{verb}_notification",
                                "parameters": {"uid": "$response.body#/notifications/0/uid"}}
        for verb in ("get", "patch")},
    ("post", "/api/v1/notifications", 201): {
        "getDeliveries": {"operationId": "get_deliveries",
                          "parameters": {"uid": "$response.body#/notifications/0/uid"}}},
}
_TYPE_LINKS = {f"{verb}Type": {"operationId": f"{verb}_type",
                              "parameters": {"name": "$response.body#/name"}}
               for verb in ("get", "delete")}
_PROFILE_LINKS = {f"{verb}Profile": {"operationId": f"{verb}_profile",
                                     "parameters": {"user_id": "$response.body#/user_id"}}
                  for verb in ("get", "delete")}
_LINKS |= {("put", "/api/v1/types/{name}", 200): _TYPE_LINKS,
           ("put", "/api/v1/types/{name}", 201): _TYPE_LINKS,
           ("put", "/api/v1/users/{user_id}", 200): _PROFILE_LINKS,
           ("put", "/api/v1/users/{user_id}", 201): _PROFILE_LINKS}
_IDS = {("get", "/api/v1/me/devices/{token}"): "get_device",
        ("put", "/api/v1/me/devices/{token}"): "put_device",
        ("delete", "/api/v1/me/devices/{token}"): "delete_device",
        ("get", "/api/v1/me/notifications/{uid}"): "get_notification",
        ("patch", "/api/v1/me/notifications/{uid}"): "patch_notification",
        ("get", "/api/v1/notifications/{uid}/deliveries"): "get_deliveries",
        ("get", "/api/v1/types/{name}"): "get_type",
        ("delete", "/api/v1/types/{name}"): "delete_type",
        ("get", "/api/v1/users/{user_id}"): "get_profile",
        ("delete", "/api/v1/users/{user_id}"): "delete_profile"}


def _operation(summary: str, security: Any, kind: Any, answers: dict[int, str | None],
               errors: tuple[int, ...], params: list[Any], body: Any) -> dict[str, Any]:
    responses: dict[str, Any] = {}
    for status, name in answers.items():
        responses[str(status)] = {"description": summary if name is None else name}
        if name is not None and "/" in name:
            responses[str(status)]["content"] = {name: {"schema": {"type": "string"}}}
        elif name is not None:
            responses[str(status)]["content"] = {"application/json": {
                "schema": {"$ref": f"#/components/schemas/{name}"}}}
    for status in errors:
        responses[str(status)] = {"$ref": f"#/components/responses/{ERRORS[status][0]}"}
    op: dict[str, Any] = {"summary": summary, "security": security, "responses": responses,
                          "parameters": params}
    if kind is not None:
        op["requestBody"] = {"required": True, "content": {"application/json": {"schema": body}}}
    return op


def _error_response(description: str, status: int) -> dict[str, Any]:
    answer: dict[str, Any] = {"description": description, "content": {"application/json": {
        "schema": error_body(status)}}}
    if status in (429, 503):
        answer["headers"] = RETRY_AFTER
    return answer


def document() -> dict[str, Any]:
    endpoints = [*_ENDPOINTS, *openapi_admin.ENDPOINTS]
    kinds = list(dict.fromkeys(e[4] for e in endpoints if e[4] is not None))
    bodies, components = msgspec.json.schema_components(
        kinds, ref_template="#/components/schemas/{name}")
    by_kind = dict(zip(kinds, bodies, strict=True))
    paths: dict[str, dict[str, Any]] = {}
    for method, path, summary, security, kind, answers, errors, params in endpoints:
        op = _operation(summary, security, kind, answers, errors, params, by_kind.get(kind))
        if (method, path) in _IDS:
            op["operationId"] = _IDS[method, path]
        for status in answers:
            if (method, path, status) in _LINKS:
                op["responses"][str(status)]["links"] = _LINKS[method, path, status]
        paths.setdefault(path, {})[method] = op
    paths[ONE_CLICK_PATH] = unsubscribe.OPERATIONS  # a form body and a page: not in the table
    schemas = {**tighten(components, known_timezones()), **RESPONSES, **openapi_admin.RESPONSES,
               "NotificationOrRemoved": {"anyOf": [{"$ref": "#/components/schemas/Notification"},
                                                   {"$ref": "#/components/schemas/Removed"}]},
               "PublishedLater": {"anyOf": [{"$ref": "#/components/schemas/Published"},
                                            {"$ref": "#/components/schemas/Scheduled"}]},
               "Document": {"type": "object", "required": ["openapi", "paths"]}}
    return {
        "openapi": "3.1.0",
        "info": {"title": "Tidings", "version": __version__, "description": LIMITS},
        "paths": paths,
        "components": {
            "schemas": schemas,
            "securitySchemes": {
                "userJWT": {"type": "http", "scheme": "bearer", "bearerFormat": "JWT"},
                "apiKey": {"type": "http", "scheme": "bearer"},
                "adminKey": openapi_admin.SECURITY_SCHEME,
            },
            "responses": {name: _error_response(text, status)
                          for status, (name, text) in ERRORS.items()},
        },
    }


@routes.get("/api/v1/openapi.json")
async def openapi(request: web.Request) -> web.Response:
    return reply(document())
