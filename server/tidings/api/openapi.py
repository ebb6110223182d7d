"""``/api/v1/openapi.json``: the OpenAPI 3.1 document of every HTTP endpoint.

Request bodies come from the same msgspec types that validate them, so the
document cannot drift from what the server accepts.
"""

from __future__ import annotations

from typing import Any

import msgspec
from aiohttp import web

from .. import __version__
from ..core.schemas import (
    DetailPatch,
    DeviceRequest,
    DeviceUpdate,
    PatchRequest,
    PublishRequest,
    TokenRequest,
)
from .http import reply

routes = web.RouteTableDef()

_USER = [{"userJWT": []}]
_PRODUCER = [{"apiKey": []}]
_ERROR = {"$ref": "#/components/responses/Error"}
_ERROR_CONTENT = {"application/json": {"schema": {
    "type": "object", "required": ["error"], "properties": {
        "error": {"type": "object", "required": ["code", "message"], "properties": {
            "code": {"type": "string"}, "message": {"type": "string"}}}}}}}
#: PostgreSQL or Redis is down: nothing was done (code ``unavailable``), retry after Retry-After.
_UNAVAILABLE = {"$ref": "#/components/responses/Unavailable"}

# (method, path, summary, security, request type, success status, query parameters)
_ENDPOINTS: list[tuple[str, str, str, Any, type | None, int, list[dict[str, Any]]]] = [
    ("get", "/api/v1/me/notifications", "List the caller's notifications, newest first",
     _USER, None, 200, [
         {"name": "page", "in": "query", "schema": {"type": "integer", "minimum": 1}},
         {"name": "page_size", "in": "query",
          "schema": {"type": "integer", "minimum": 1, "maximum": 100}},
         {"name": "is_read", "in": "query", "schema": {"type": "boolean"}},
         {"name": "before", "in": "query", "schema": {"type": "integer", "minimum": 1},
          "description": "only notifications with a smaller seq (cursor paging)"},
     ]),
    ("patch", "/api/v1/me/notifications", "Mark read or remove some or all notifications",
     _USER, PatchRequest, 200, []),
    ("get", "/api/v1/me/notifications/{uid}", "One of the caller's notifications",
     _USER, None, 200, []),
    ("patch", "/api/v1/me/notifications/{uid}", "Mark one notification read or removed",
     _USER, DetailPatch, 200, []),
    ("post", "/api/v1/me/devices", "Register a push device (201 new, 200 existing)",
     _USER, DeviceRequest, 201, []),
    ("get", "/api/v1/me/devices", "List the caller's devices", _USER, None, 200, []),
    ("get", "/api/v1/me/devices/{token}", "One of the caller's devices", _USER, None, 200, []),
    ("put", "/api/v1/me/devices/{token}", "Change a device's name, app or active flag",
     _USER, DeviceUpdate, 200, []),
    ("delete", "/api/v1/me/devices/{token}", "Forget a device", _USER, None, 204, []),
    ("post", "/api/v1/notifications",
     "Publish a notification to recipients (201 stored, 202 live-only or scheduled)",
     _PRODUCER, PublishRequest, 201, []),
    ("get", "/api/v1/notifications/{uid}/deliveries",
     "Delivery outcomes of one published notification", _PRODUCER, None, 200, []),
    ("post", "/api/v1/tokens", "Mint a user token with the server's HS256 secret",
     _PRODUCER, TokenRequest, 201, []),
    ("get", "/api/v1/openapi.json", "This document", [], None, 200, []),
    ("get", "/api/v1/dev/token", "A user token for the demo page (dev mode only)", [], None,
     200, [{"name": "user", "in": "query", "schema": {"type": "string"}}]),
    ("get", "/", "The demo inbox page", [], None, 200, []),
    ("get", "/static/tidings.js", "The JavaScript client (ES module)", [], None, 200, []),
    ("get", "/healthz", "Liveness", [], None, 200, []),
    ("get", "/readyz", "Readiness: PostgreSQL and Redis answer", [], None, 200, []),
    ("get", "/ws/me/notifications",
     "WebSocket of live notifications and counts (see the README for messages)",
     _USER, None, 101, [{"name": "since", "in": "query", "schema": {"type": "integer"}}]),
]


def document() -> dict[str, Any]:
    kinds = [k for *_, k, _, _ in _ENDPOINTS if k is not None]
    schemas, components = msgspec.json.schema_components(
        kinds, ref_template="#/components/schemas/{name}")
    by_kind = dict(zip(kinds, schemas, strict=True))
    paths: dict[str, dict[str, Any]] = {}
    for method, path, summary, security, kind, status, params in _ENDPOINTS:
        op: dict[str, Any] = {"summary": summary, "security": security,
                              "responses": {str(status): {"description": "success"},
                                            "4XX": _ERROR, "503": _UNAVAILABLE}}
        names = [seg[1:-1] for seg in path.split("/") if seg.startswith("{")]
        op["parameters"] = [{"name": n, "in": "path", "required": True,
                             "schema": {"type": "string"}} for n in names] + params
        if kind is not None:
            op["requestBody"] = {"required": True, "content": {
                "application/json": {"schema": by_kind[kind]}}}
        paths.setdefault(path, {})[method] = op
    return {
        "openapi": "3.1.0",
        "info": {"title": "Tidings", "version": __version__},
        "paths": paths,
        "components": {
            "schemas": components,
            "securitySchemes": {
                "userJWT": {"type": "http", "scheme": "bearer", "bearerFormat": "JWT"},
                "apiKey": {"type": "http", "scheme": "bearer"},
            },
            "responses": {"Error": {"description": "error", "content": _ERROR_CONTENT},
                          "Unavailable": {
                              "description": "PostgreSQL or Redis is down; retry later",
                              "headers": {"Retry-After": {"schema": {"type": "integer"}}},
                              "content": _ERROR_CONTENT}},
        },
    }


@routes.get("/api/v1/openapi.json")
async def openapi(request: web.Request) -> web.Response:
    return reply(document())
