"""HTTP plumbing shared by the handlers: JSON replies, error bodies, who is calling.

Every error leaves as ``{"error": {"code", "message"}}`` with its status,
whether it was raised by a handler, by aiohttp (404, 405, 413) or unexpected
(500, logged without the request's credentials). Every answer carries the
request's ``X-Request-Id`` (the caller's, or a new one), which its log lines
carry too (:mod:`tidings.logcontext`); at DEBUG each request logs one line.
"""

from __future__ import annotations

import hashlib
import logging
import math
import time
import uuid
from collections.abc import Awaitable
from typing import Any, TypeVar

import orjson
from aiohttp import web

from .. import auth, logcontext
from ..auth import Identity, check_api_key
from ..core import errors
from ..core.decoding import decode_body
from ..core.errors import AuthError, NotFound, RateLimited, TidingsError, TooLarge
from ..core.ratelimit import RateLimiter
from ..core.requests import MAX_BODY_BYTES
from ..services.context import SERVICES, Services
from ..services.health import unavailable

log = logging.getLogger(__name__)
T = TypeVar("T")

_STATUS_KINDS = {
    404: errors.NOT_FOUND,
    405: errors.METHOD_NOT_ALLOWED,
    413: errors.PAYLOAD_TOO_LARGE,
    415: errors.UNSUPPORTED_MEDIA_TYPE,
}


def reply(data: Any, status: int = 200, headers: dict[str, str] | None = None) -> web.Response:
    return web.Response(body=orjson.dumps(data), status=status,
                        content_type="application/json", headers=headers)


def error(status: int, code: str, message: str,
          headers: dict[str, str] | None = None) -> web.Response:
    return reply({"error": {"code": code, "message": message}}, status, headers)


def failure(request: web.Request, exc: Exception) -> tuple[int, str, str, dict[str, str] | None]:
    """The status, code, message and headers that answer ``exc`` raised while handling
    ``request`` (also one member of a batch).

    A dependency outage (also a driver error that escaped its edge) is a 503
    ``unavailable`` with Retry-After, reported to the node's health (one log line
    per outage), never a traceback per request.
    """
    down = unavailable(exc)
    if down is not None:
        if SERVICES in request.app:
            request.app[SERVICES].health.report(down)
        return (down.status, down.code, down.message,
                {"Retry-After": str(math.ceil(down.retry_after))})
    if isinstance(exc, RateLimited):
        return (exc.status, exc.code, exc.message,
                {"Retry-After": str(math.ceil(exc.retry_after))})
    if isinstance(exc, TidingsError):
        headers = {"WWW-Authenticate": "Bearer"} if exc.status == 401 else None
        return exc.status, exc.code, exc.message, headers
    if isinstance(exc, web.HTTPException):
        code = _STATUS_KINDS.get(exc.status, errors.HTTP_ERROR).code
        message = (f"request body is over {MAX_BODY_BYTES} bytes" if exc.status == 413
                   else exc.reason)
        allow = {"Allow": exc.headers["Allow"]} if "Allow" in exc.headers else None
        return exc.status, code, message, allow
    log.exception("unhandled error on %s %s", request.method, request.path, exc_info=exc)
    return 500, errors.INTERNAL_ERROR.code, errors.INTERNAL_ERROR.message, None


def _error_reply(request: web.Request, exc: Exception) -> web.Response:
    return error(*failure(request, exc))


_CORS_PREFLIGHT = {
    "Access-Control-Allow-Methods": "GET, POST, PUT, PATCH, DELETE",
    "Access-Control-Allow-Headers": "Authorization, Content-Type",
    "Access-Control-Max-Age": "600",
}


def edge(allowed_origins: tuple[str, ...]) -> Any:
    """The one middleware: errors as JSON, and CORS for the allowed browser origins.

    One middleware, not two, and none for WebSocket upgrades: a middleware's
    frame lives as long as the socket it serves.
    CORS: preflights are answered and responses marked for allowed origins
    (``*``: any); same-origin pages (the demo) need none, and other origins get
    nothing, so the browser refuses them.
    """

    @web.middleware
    def middleware(request: web.Request, handler: Any) -> Awaitable[web.StreamResponse]:
        # A WebSocket upgrade goes straight to its handler, which answers its own
        # errors with close codes: no middleware frame held for the socket's life.
        if request.headers.get("Upgrade", "").lower() == "websocket":
            return handler(request)
        return around(request, handler)

    async def around(request: web.Request, handler: Any) -> web.StreamResponse:
        started = time.monotonic()
        request_id = logcontext.begin(request.headers.get("X-Request-Id"), _node_id(request))
        origin = request.headers.get("Origin")
        cors = origin is not None and ("*" in allowed_origins or origin in allowed_origins)
        if cors and request.method == "OPTIONS" and (
                "Access-Control-Request-Method" in request.headers):
            return web.Response(status=204, headers={
                "Access-Control-Allow-Origin": origin, "Vary": "Origin", **_CORS_PREFLIGHT})
        try:
            response = await handler(request)
        except web.HTTPException as exc:
            if exc.status < 400:
                raise
            response = _error_reply(request, exc)
        except Exception as exc:
            response = _error_reply(request, exc)
        if cors and not response.prepared:  # a WebSocket has already sent its headers
            response.headers.update({"Access-Control-Allow-Origin": origin, "Vary": "Origin",
                                     "Access-Control-Expose-Headers": "Retry-After"})
        if not response.prepared:
            response.headers["X-Request-Id"] = request_id
        if log.isEnabledFor(logging.DEBUG):
            log.debug("%s %s %d %.1f ms", request.method, _route(request), response.status,
                      (time.monotonic() - started) * 1000)
        return response

    return middleware


def _node_id(request: web.Request) -> str | None:
    return request.app[SERVICES].node_id if SERVICES in request.app else None


def _route(request: web.Request) -> str:
    """The route's pattern (``/api/v1/me/devices/{token}``), never the path: a path may
    hold a device token."""
    resource = request.match_info.route.resource
    return resource.canonical if resource is not None else "(no route)"


def services(request: web.Request) -> Services:
    return request.app[SERVICES]


def path_uid(request: web.Request) -> uuid.UUID:
    """The ``{uid}`` of the route: a notification's uid; one that is no uuid is not found."""
    try:
        return uuid.UUID(request.match_info["uid"])
    except ValueError:
        raise NotFound("Notification not found") from None


def bearer(request: web.Request) -> str | None:
    return auth.bearer(request.headers.get("Authorization", ""))


def _limit(limiter: RateLimiter | None, key: str) -> None:
    if limiter is not None:
        wait = limiter.take(key, time.monotonic())
        if wait:
            raise RateLimited(wait)


async def user(request: web.Request) -> Identity:
    """The calling user (verified token), within the per-user rate limit."""
    token = bearer(request)
    if token is None:
        raise AuthError("a user token is required (Authorization: Bearer <JWT>)")
    s = services(request)
    identity = await s.verifier.verify(token)
    logcontext.bind(user_id=identity.user_id)
    _limit(s.user_limiter, identity.user_id)
    return identity


def producer(request: web.Request) -> None:
    """A valid producer API key, within the per-key rate limit."""
    s = services(request)
    key = bearer(request)
    check_api_key(key, s.settings.api_keys)
    if s.producer_limiter is not None:  # the key's hash only when it is limited
        _limit(s.producer_limiter, hashlib.sha256((key or "").encode()).hexdigest())




def _json_type(header: str | None) -> bool:
    """No Content-Type (curl's ``--data-binary``, old clients) is read as JSON;
    ``application/json`` and any ``application/*+json`` are JSON; nothing else is."""
    if header is None:
        return True
    mime = header.partition(";")[0].strip().lower()
    return mime == "application/json" or (
        mime.startswith("application/") and mime.endswith("+json"))


async def raw_body(request: web.Request) -> bytes:
    """The request's body, read only if it is JSON (415 otherwise) and within
    :data:`MAX_BODY_BYTES` (413 otherwise)."""
    if not _json_type(request.headers.get("Content-Type")):
        raise errors.UNSUPPORTED_MEDIA_TYPE.error(
            "request bodies are JSON: send Content-Type: application/json")
    if request.content_length is not None and request.content_length > MAX_BODY_BYTES:
        raise TooLarge(f"request body is over {MAX_BODY_BYTES} bytes")
    return await request.read()


async def body(request: web.Request, kind: type[T]) -> T:
    """The request's JSON body decoded as ``kind``: :func:`raw_body`'s 415 and 413, and
    400 for what :func:`decode_body` refuses."""
    return decode_body(await raw_body(request), kind)
