"""Admission of a socket: Origin, ``since``, the token (header, subprotocol or first
message), the per-user cap and the join; and the JSON answer to a request that is no upgrade.

Close codes: 4003 origin not allowed, 1007 a bad ``since`` or first frame
(a binary first frame included), 4001 a missing, bad or expired token, 4008
too many sockets for the user, 1012 when PostgreSQL or Redis cannot be
reached to join (the client resumes). An admitted socket is open
(:meth:`Connection.open`) once its counts are sent; a refused one is closed.
"""

from __future__ import annotations

import logging
from collections.abc import Awaitable

import orjson
from aiohttp import web

from .. import auth
from ..config import Settings
from ..core import errors, origins, protocol
from ..core.errors import AuthError, StoreError, Unavailable
from ..services.context import Services
from .connection import Connection
from .hub import Hub

log = logging.getLogger(__name__)


def header_token(request: web.Request) -> str | None:
    return auth.bearer(request.headers.get("Authorization", ""))


def _since(request: web.Request) -> int | None:
    if "since" not in request.query_string:  # most clients send none: no query parsing
        return None
    raw = request.query.get("since")
    if raw is None or raw == "":
        return None
    value = int(raw)
    if value < 0:
        raise ValueError(raw)
    return value


def _error(kind: errors.ErrorKind, message: str) -> web.Response:
    headers = {"WWW-Authenticate": "Bearer"} if kind.status == 401 else None
    return web.Response(body=orjson.dumps({"error": {"code": kind.code, "message": message}}),
                        status=kind.status, content_type="application/json", headers=headers)


async def not_an_upgrade(request: web.Request, services: Services,
                         subprotocol: str | None) -> web.Response:
    """A request that cannot become a socket: 401 without a valid token, else 400."""
    token = header_token(request) or subprotocol
    if token is None:
        return _error(errors.UNAUTHORIZED, "a user token is required (Authorization: Bearer)")
    try:
        await services.verifier.verify(token)
    except AuthError as exc:
        return _error(exc.kind, exc.message)
    return _error(errors.NOT_A_WEBSOCKET, errors.NOT_A_WEBSOCKET.message)


class Refused(Exception):
    """The socket is refused before its token is read: close it with ``code``."""

    def __init__(self, code: int, reason: str):
        super().__init__(reason)
        self.code = code
        self.reason = reason


def since_of(request: web.Request, settings: Settings) -> int | None:
    """The ``since`` of an upgrade request from an allowed origin (None: none given);
    Refused (4003, 1007) otherwise."""
    origin = request.headers.get("Origin")
    if origin is not None and not origins.origin_allowed(
            origin, settings.allowed_origins, settings.public_url,
            origins.is_loopback(settings.host)):
        raise Refused(protocol.CLOSE_ORIGIN, "origin not allowed")
    try:
        return _since(request)
    except ValueError:
        raise Refused(protocol.CLOSE_BAD_FRAME, "since must be a whole number") from None


async def admit(conn: Connection, hub: Hub, services: Services, token: str,
                since: int | None) -> None:
    """Verify the token, check the cap, join: ``conn`` is then open, or closed with the
    code that says why not."""
    try:
        identity = await services.verifier.verify(token)
    except AuthError as exc:
        conn.close(protocol.CLOSE_BAD_TOKEN, exc.message)
        return
    if hub.room_size(identity.user_id) >= services.settings.max_sockets_per_user:
        conn.close(protocol.CLOSE_TOO_MANY, "too many sockets for this user")
        return
    conn.user_id = identity.user_id
    hub.expire_at(conn, identity.expires_at)
    try:
        await hub.join(conn, since)
    except Unavailable as exc:  # one line per outage, not per socket
        hub.realtime.report(exc)
        conn.close(protocol.CLOSE_RESTART, "try again")
        return
    except StoreError as exc:
        log.warning("joining a socket failed (%s); it is closed for a resume", exc)
        conn.close(protocol.CLOSE_RESTART, "try again")
        return
    conn.open()


def first_message(conn: Connection, hub: Hub, services: Services,
                  data: bytes) -> Awaitable[None] | None:
    """The first message of a socket with no token yet: it must be a text ``auth``
    message; the admission it starts, or None once the socket is closed."""
    try:
        first = protocol.parse(data)
    except protocol.BadMessage as exc:
        conn.close(protocol.CLOSE_BAD_FRAME, str(exc))
        return None
    if not isinstance(first, protocol.Auth):
        conn.close(protocol.CLOSE_BAD_TOKEN,
                   "the first message must be {\"type\": \"auth\", \"token\": ...}")
        return None
    return admit(conn, hub, services, first.token, first.since)
