"""``GET /ws/me/notifications``: the aiohttp handler of one socket.

Order of a connection: Origin check (4003), authentication by header,
subprotocol or first message (4001), the per-user socket cap (4008), then the
hub's join (counts, replay, live). Client frames are parsed by
:mod:`tidings.core.protocol`; a malformed one closes that socket (1007), an
oversized one too (1009, by aiohttp's ``max_msg_size``). The socket is
closed with 4001 when its token expires unless a ``refresh`` came in time.
"""

from __future__ import annotations

import asyncio
import logging
import time

import msgspec
from aiohttp import WSMsgType, web

from ..auth import Identity
from ..core import protocol
from ..core.errors import AuthError, TidingsError
from ..services.context import SERVICES
from .connection import Connection
from .hub import Hub

log = logging.getLogger(__name__)
HUB: web.AppKey[Hub] = web.AppKey("hub", Hub)

routes = web.RouteTableDef()


async def _close(ws: web.WebSocketResponse, code: int, reason: str) -> web.WebSocketResponse:
    await ws.close(code=code, message=reason.encode())
    return ws


def _header_token(request: web.Request) -> str | None:
    scheme, _, value = request.headers.get("Authorization", "").partition(" ")
    return value.strip() if scheme.lower() == "bearer" and value.strip() else None


def _since(request: web.Request) -> int | None:
    raw = request.query.get("since")
    if raw is None or raw == "":
        return None
    value = int(raw)
    if value < 0:
        raise ValueError(raw)
    return value


@routes.get("/ws/me/notifications")
async def socket(request: web.Request) -> web.StreamResponse:
    services = request.app[SERVICES]
    hub = request.app[HUB]
    s = services.settings
    subprotocol = protocol.pick_subprotocol(request.headers.get("Sec-WebSocket-Protocol", ""))
    ws = web.WebSocketResponse(
        protocols=(subprotocol,) if subprotocol else (), heartbeat=s.ws_heartbeat,
        max_msg_size=s.ws_max_frame, compress=False, decode_text=False,
    )
    await ws.prepare(request)
    if not protocol.origin_allowed(request.headers.get("Origin"), s.allowed_origins,
                                   request.host):
        return await _close(ws, protocol.CLOSE_ORIGIN, "origin not allowed")
    try:
        since = _since(request)
    except ValueError:
        return await _close(ws, protocol.CLOSE_BAD_FRAME, "since must be a whole number")
    token = _header_token(request) or subprotocol
    try:
        if token is None:
            token, since = await _first_message(ws, s.ws_auth_timeout)
        identity = await services.verifier.verify(token)
    except AuthError as exc:
        return await _close(ws, protocol.CLOSE_BAD_TOKEN, exc.message)
    except protocol.BadMessage as exc:
        return await _close(ws, protocol.CLOSE_BAD_FRAME, str(exc)[:120])
    if hub.room_size(identity.user_id) >= s.max_sockets_per_user:
        return await _close(ws, protocol.CLOSE_TOO_MANY, "too many sockets for this user")

    conn = Connection(ws, request.transport, identity.user_id, s.ws_send_queue)
    _expire_at(conn, identity)
    try:
        try:
            await hub.join(conn, since)
        except Exception:
            log.exception("joining a socket failed; it is closed for a resume")
            await conn.close(protocol.CLOSE_RESTART, "try again")
            return ws
        await _serve(ws, conn, hub, request)
    finally:
        if conn.expiry is not None:
            conn.expiry.cancel()
        hub.leave(conn)
    return ws


async def _first_message(ws: web.WebSocketResponse, wait: float) -> tuple[str, int | None]:
    try:
        msg = await ws.receive(timeout=wait)
    except TimeoutError:
        raise AuthError("no auth message in time") from None
    if msg.type not in (WSMsgType.TEXT, WSMsgType.BINARY):
        raise AuthError("no auth message")
    first = protocol.parse(msg.data)
    if not isinstance(first, protocol.Auth):
        raise AuthError("the first message must be {\"type\": \"auth\", \"token\": ...}")
    return first.token, first.since


def _expire_at(conn: Connection, identity: Identity) -> None:
    """(Re)arm the close at the token's expiry."""
    if conn.expiry is not None:
        conn.expiry.cancel()
    conn.expiry = asyncio.get_running_loop().call_later(
        max(identity.expires_at - time.time(), 0), conn.abort, protocol.CLOSE_BAD_TOKEN,
        "token expired")


async def _serve(ws: web.WebSocketResponse, conn: Connection, hub: Hub,
                 request: web.Request) -> None:
    services = request.app[SERVICES]
    async for msg in ws:
        if msg.type is WSMsgType.BINARY:
            await conn.close(protocol.CLOSE_BAD_FRAME, "binary frames are not part of the protocol")
            return
        if msg.type is not WSMsgType.TEXT:
            continue
        try:
            message = protocol.parse(msg.data)
        except protocol.BadMessage as exc:
            await conn.close(protocol.CLOSE_BAD_FRAME, str(exc)[:120])
            return
        if isinstance(message, protocol.Ack):
            hub.acked(conn, message.seq)
            continue
        if isinstance(message, protocol.MarkRead):
            try:
                await services.inbox.act(conn.user_id, "MARK_AS_READ", message.uids)
            except TidingsError as exc:
                conn.send(msgspec.json.encode(protocol.error_message(exc.code, exc.message)))
        elif isinstance(message, protocol.Refresh):
            try:
                identity = await services.verifier.verify(message.token)
            except AuthError as exc:
                await conn.close(protocol.CLOSE_BAD_TOKEN, exc.message)
                return
            if identity.user_id != conn.user_id:
                await conn.close(protocol.CLOSE_BAD_TOKEN, "refresh token is for another user")
                return
            _expire_at(conn, identity)
            conn.send(msgspec.json.encode(protocol.refreshed_message(identity.expires_at)))
        else:  # a second auth
            await conn.close(protocol.CLOSE_BAD_FRAME, "already authenticated")
            return
