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

import msgspec
from aiohttp import WSMsgType, web

from ..core import protocol
from ..core.errors import AuthError, TidingsError
from ..services.context import SERVICES
from .connection import Connection
from .hub import Hub

log = logging.getLogger(__name__)
HUB: web.AppKey[Hub] = web.AppKey("hub", Hub)

routes = web.RouteTableDef()


async def _close(ws: web.WebSocketResponse, code: int, reason: str) -> None:
    await ws.close(code=code, message=reason.encode())


def _header_token(request: web.Request) -> str | None:
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


@routes.get("/ws/me/notifications")
async def socket(request: web.Request) -> web.StreamResponse:
    """One socket, from upgrade to close.

    Memory per idle socket counts: this coroutine's frame is the only one of
    Tidings held while the socket lives (authentication runs in a helper whose
    frame, with the token, is gone once it returns).
    """
    hub = request.app[HUB]
    s = request.app[SERVICES].settings
    subprotocol = protocol.pick_subprotocol(request.headers.get("Sec-WebSocket-Protocol", ""))
    ws = web.WebSocketResponse(
        # pings: the hub's sweep, not a timer per socket (see Hub.ping_phase)
        protocols=(subprotocol,) if subprotocol else (), heartbeat=None, autoping=False,
        max_msg_size=s.ws_max_frame, compress=False, decode_text=False,
    )
    await ws.prepare(request)
    admitted = await _admit(request, ws, hub, subprotocol)
    if admitted is None:
        return ws
    conn, since = admitted
    try:
        try:
            await hub.join(conn, since)
        except Exception:
            log.exception("joining a socket failed; it is closed for a resume")
            await conn.close(protocol.CLOSE_RESTART, "try again")
            return ws
        while not conn.closing:
            msg = await ws.receive()
            conn.awaiting_pong = False  # any frame shows the peer is there
            if msg.type is WSMsgType.TEXT:
                await _on_text(conn, hub, request, msg.data)
            elif msg.type is WSMsgType.PING:
                await ws.pong(msg.data)
            elif msg.type is WSMsgType.BINARY:
                await conn.close(protocol.CLOSE_BAD_FRAME,
                                 "binary frames are not part of the protocol")
            elif msg.type in (WSMsgType.CLOSE, WSMsgType.CLOSING, WSMsgType.CLOSED,
                              WSMsgType.ERROR):
                break
    finally:
        hub.leave(conn)
    return ws


async def _admit(request: web.Request, ws: web.WebSocketResponse, hub: Hub,
                 subprotocol: str | None) -> tuple[Connection, int | None] | None:
    """Origin, ``since``, token and the socket cap: (Connection, since), or None if closed."""
    services = request.app[SERVICES]
    s = services.settings
    origin = request.headers.get("Origin")
    if origin is not None and not protocol.origin_allowed(origin, s.allowed_origins,
                                                          request.host):
        await _close(ws, protocol.CLOSE_ORIGIN, "origin not allowed")
        return None
    try:
        since = _since(request)
    except ValueError:
        await _close(ws, protocol.CLOSE_BAD_FRAME, "since must be a whole number")
        return None
    token = _header_token(request) or subprotocol
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
    try:
        async with asyncio.timeout(wait):
            msg = await ws.receive()
            while msg.type in (WSMsgType.PING, WSMsgType.PONG):
                if msg.type is WSMsgType.PING:
                    await ws.pong(msg.data)
                msg = await ws.receive()
    except TimeoutError:
        raise AuthError("no auth message in time") from None
    if msg.type not in (WSMsgType.TEXT, WSMsgType.BINARY):
        raise AuthError("no auth message")
    first = protocol.parse(msg.data)
    if not isinstance(first, protocol.Auth):
        raise AuthError("the first message must be {\"type\": \"auth\", \"token\": ...}")
    return first.token, first.since


async def _on_text(conn: Connection, hub: Hub, request: web.Request, data: bytes) -> None:
    """One client message: ack, mark_read, refresh; anything else closes the socket."""
    try:
        message = protocol.parse(data)
    except protocol.BadMessage as exc:
        await conn.close(protocol.CLOSE_BAD_FRAME, str(exc)[:120])
        return
    if isinstance(message, protocol.Ack):
        hub.acked(conn, message.seq)
        return
    services = request.app[SERVICES]
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
        hub.expire_at(conn, identity.expires_at)
        conn.send(msgspec.json.encode(protocol.refreshed_message(identity.expires_at)))
    else:  # a second auth
        await conn.close(protocol.CLOSE_BAD_FRAME, "already authenticated")
