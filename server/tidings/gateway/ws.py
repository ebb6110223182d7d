"""``GET /ws/me/notifications``: the upgrade, after which aiohttp lets go of the socket.

Order of a connection: the upgrade request is checked (a request that is no
valid WebSocket upgrade gets a JSON error: 401 without a valid token, else
400); aiohttp then hands the connection over to a
:class:`~tidings.gateway.connection.Connection` (:func:`take_over`), and
admission runs (:mod:`.admit`: Origin 4003, token 4001, the per-user cap
4008, the hub's join). With the token in a header or the subprotocol, the
101 answer and the counts leave in one write; with a first-message token the
101 goes at once and the socket waits for its ``auth`` message. Client
messages (:mod:`.messages`) follow until either side closes.

Memory per idle socket counts: once admitted, a socket is its transport and
its Connection only; no request, handler coroutine, task or timer of
aiohttp or of Tidings stays behind.
"""

from __future__ import annotations

import contextvars
import logging
from collections.abc import Awaitable

from aiohttp import web

from .. import logcontext
from ..core import frames, protocol
from ..services.context import Services
from . import admit, messages
from .connection import Connection
from .hub import Hub

log = logging.getLogger(__name__)
HUB: web.AppKey[Hub] = web.AppKey("hub", Hub)

routes = web.RouteTableDef()


class Gate:
    """What the node's sockets do with their messages (the connections' owner)."""

    __slots__ = ("hub", "services")

    def __init__(self, hub: Hub, services: Services):
        self.hub = hub
        self.services = services

    def on_auth(self, conn: Connection, data: bytes) -> Awaitable[None] | None:
        return admit.first_message(conn, self.hub, self.services, data)

    def on_text(self, conn: Connection, data: bytes) -> Awaitable[None] | None:
        return messages.on_text(conn, self.hub, self.services, data)

    def left(self, conn: Connection) -> None:
        self.hub.leave(conn)
        if log.isEnabledFor(logging.DEBUG):  # a socket keeps no log ids: named here
            contextvars.Context().run(self._closed, conn)

    def _closed(self, conn: Connection) -> None:
        logcontext.begin(None, self.services.node_id, conn.user_id or None)
        log.debug("socket closed")


GATE: web.AppKey[Gate] = web.AppKey("gate", Gate)


class _Detached(web.StreamResponse):
    """What the route returns once the connection is no longer aiohttp's: nothing to send."""

    async def prepare(self, request: web.BaseRequest) -> None:
        return None

    async def write_eof(self, data: bytes = b"") -> None:
        return None


def take_over(request: web.Request, conn: Connection) -> None:
    """aiohttp lets go of the request's connection, and ``conn`` takes it over.

    aiohttp has no public call for this. What it relies on, in aiohttp's
    request handler (3.10 to 3.14): once told its connection is lost, the
    handler leaves the server's list, cancels its keep-alive timer, drops its
    parser and writes nothing more (its ``transport`` is None, so closing it
    closes nothing and the response the route returns is never sent); bytes
    it read past the request wait in ``_message_tail``. The socket tests
    (``tests/realtime``) cover each of these.
    """
    handler = request.protocol
    transport = request.transport
    assert transport is not None
    buffered: bytes = getattr(handler, "_message_tail", b"")
    handler.transport = None
    handler.connection_lost(None)
    conn.attach(transport, buffered)


@routes.get("/ws/me/notifications")
async def socket(request: web.Request) -> web.StreamResponse:
    """One socket's upgrade and admission; the socket lives on in its Connection."""
    gate = request.app[GATE]
    services = gate.services
    s = services.settings
    subprotocol = protocol.pick_subprotocol(request.headers.get("Sec-WebSocket-Protocol", ""))
    key = frames.handshake_key(request.method, request.headers.get)
    if key is None or request.transport is None:
        return await admit.not_an_upgrade(request, services, subprotocol)
    conn = Connection(gate, s.ws_send_queue, s.ws_max_frame, frames.opening(key, subprotocol))
    take_over(request, conn)
    try:
        since = admit.since_of(request, s)
    except admit.Refused as refused:
        conn.close(refused.code, refused.reason)
        return _Detached()
    token = admit.header_token(request) or subprotocol
    if token is None:
        conn.wait_for_auth(s.ws_auth_timeout)
    else:
        try:
            await admit.admit(conn, gate.hub, services, token, since)
        except Exception:
            log.exception("admitting a socket failed")
        finally:
            conn.settle()
    return _Detached()
