"""``GET /ws/me/notifications``: the aiohttp handler of one socket.

Order of a connection: admission (:mod:`.admit`: Origin 4003, token 4001,
the per-user cap 4008), then the hub's join (counts, replay, live), then
client messages (:mod:`.messages`) until either side closes. A binary frame
closes the socket (1007), an oversized one too (1009, by aiohttp's
``max_msg_size``). A request that is no WebSocket upgrade gets a JSON error:
401 without a valid token, else 400.
"""

from __future__ import annotations

import logging

from aiohttp import WSMsgType, web

from .. import logcontext
from ..core import protocol
from ..core.errors import StoreError, Unavailable
from ..services.context import SERVICES
from .admit import admit, not_an_upgrade
from .hub import Hub
from .messages import on_text

log = logging.getLogger(__name__)
HUB: web.AppKey[Hub] = web.AppKey("hub", Hub)

routes = web.RouteTableDef()


@routes.get("/ws/me/notifications")
async def socket(request: web.Request) -> web.StreamResponse:
    """One socket, from upgrade to close.

    Memory per idle socket counts: this coroutine's frame is the only one of
    Tidings held while the socket lives (admission runs in a helper whose
    frame, with the token, is gone once it returns).
    """
    hub = request.app[HUB]
    services = request.app[SERVICES]
    s = services.settings
    subprotocol = protocol.pick_subprotocol(request.headers.get("Sec-WebSocket-Protocol", ""))
    ws = web.WebSocketResponse(
        # pings: the hub's sweep, not a timer per socket (see Hub.ping_phase)
        protocols=(subprotocol,) if subprotocol else (), heartbeat=None, autoping=False,
        max_msg_size=s.ws_max_frame, compress=False, decode_text=False,
    )
    if not ws.can_prepare(request).ok:
        return await not_an_upgrade(request, services, subprotocol)
    await ws.prepare(request)
    admitted = await admit(request, ws, hub, services, subprotocol)
    if admitted is None:
        return ws
    conn, since = admitted
    logcontext.begin(request.headers.get("X-Request-Id"), services.node_id, conn.user_id)
    try:
        try:
            await hub.join(conn, since)
        except Unavailable as exc:  # one line per outage, not per socket
            hub.realtime.report(exc)
            await conn.close(protocol.CLOSE_RESTART, "try again")
            return ws
        except StoreError as exc:
            log.warning("joining a socket failed (%s); it is closed for a resume", exc)
            await conn.close(protocol.CLOSE_RESTART, "try again")
            return ws
        while not conn.closing:
            msg = await ws.receive()
            conn.awaiting_pong = False  # any frame shows the peer is there
            if msg.type is WSMsgType.TEXT:
                await on_text(conn, hub, services, msg.data)
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
        log.debug("socket closed (%s)", ws.close_code)
    return ws
