"""Admission of a socket: Origin, ``since``, the token (header, subprotocol or first
message) and the per-user cap; and the JSON answer to a request that is no upgrade.

Close codes: 4003 origin not allowed, 1007 a bad ``since`` or first frame
(a binary first frame included), 4001 a missing, bad or expired token, 4008
too many sockets for the user.
"""

from __future__ import annotations

import asyncio

import orjson
from aiohttp import WSMsgType, web

from ..core import origins, protocol
from ..core.errors import AuthError
from ..services.context import Services
from .connection import Connection
from .hub import Hub


async def _close(ws: web.WebSocketResponse, code: int, reason: str) -> None:
    await ws.close(code=code, message=reason.encode())


def header_token(request: web.Request) -> str | None:
    scheme, _, value = request.headers.get("Authorization", "").partition(" ")
    return value.strip() if scheme.lower() == "bearer" and value.strip() else None


def _since(request: web.Request) -> int | None:
    if "since" not in request.query_string:  # request.query would be kept for the socket's life
        return None
    raw = request.query.get("since")
    if raw is None or raw == "":
        return None
    value = int(raw)
    if value < 0:
        raise ValueError(raw)
    return value


def _error(status: int, code: str, message: str) -> web.Response:
    headers = {"WWW-Authenticate": "Bearer"} if status == 401 else None
    return web.Response(body=orjson.dumps({"error": {"code": code, "message": message}}),
                        status=status, content_type="application/json", headers=headers)


async def not_an_upgrade(request: web.Request, services: Services,
                         subprotocol: str | None) -> web.Response:
    """A request that cannot become a socket: 401 without a valid token, else 400."""
    token = header_token(request) or subprotocol
    if token is None:
        return _error(401, "unauthorized", "a user token is required (Authorization: Bearer)")
    try:
        await services.verifier.verify(token)
    except AuthError as exc:
        return _error(401, exc.code, exc.message)
    return _error(400, "not_a_websocket", "this endpoint takes WebSocket upgrades only")


async def admit(request: web.Request, ws: web.WebSocketResponse, hub: Hub,
                services: Services, subprotocol: str | None
                ) -> tuple[Connection, int | None] | None:
    """(Connection, since) of an admitted socket, or None once it was closed."""
    s = services.settings
    origin = request.headers.get("Origin")
    if origin is not None and not origins.origin_allowed(
            origin, s.allowed_origins, s.public_url, origins.is_loopback(s.host)):
        await _close(ws, protocol.CLOSE_ORIGIN, "origin not allowed")
        return None
    try:
        since = _since(request)
    except ValueError:
        await _close(ws, protocol.CLOSE_BAD_FRAME, "since must be a whole number")
        return None
    token = header_token(request) or subprotocol
    try:
        if token is None:
            token, since = await _first_message(ws, s.ws_auth_timeout)
        identity = await services.verifier.verify(token)
    except AuthError as exc:
        await _close(ws, protocol.CLOSE_BAD_TOKEN, exc.message)
        return None
    except protocol.BadMessage as exc:
        await _close(ws, protocol.CLOSE_BAD_FRAME, str(exc)[:120])
        return None
    if hub.room_size(identity.user_id) >= s.max_sockets_per_user:
        await _close(ws, protocol.CLOSE_TOO_MANY, "too many sockets for this user")
        return None
    conn = Connection(ws, request.transport, identity.user_id, s.ws_send_queue)
    hub.expire_at(conn, identity.expires_at)
    return conn, since


async def _first_message(ws: web.WebSocketResponse, wait: float) -> tuple[str, int | None]:
    """The token and ``since`` of the first message, which must be a text ``auth`` message."""
    try:
        async with asyncio.timeout(wait):
            msg = await ws.receive()
            while msg.type in (WSMsgType.PING, WSMsgType.PONG):
                if msg.type is WSMsgType.PING:
                    await ws.pong(msg.data)
                msg = await ws.receive()
    except TimeoutError:
        raise AuthError("no auth message in time") from None
    if msg.type is WSMsgType.BINARY:
        raise protocol.BadMessage("binary frames are not part of the protocol")
    if msg.type is not WSMsgType.TEXT:
        raise AuthError("no auth message")
    first = protocol.parse(msg.data)
    if not isinstance(first, protocol.Auth):
        raise AuthError("the first message must be {\"type\": \"auth\", \"token\": ...}")
    return first.token, first.since
