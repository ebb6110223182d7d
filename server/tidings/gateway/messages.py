"""Client messages on an admitted socket: ack, mark_read, refresh, within the socket's budget.

Contract: each socket may send ``protocol.MESSAGE_RATE`` messages a second
(bursts of ``protocol.MESSAGE_BURST``); a message over the limit is not
processed and is answered with ``{"type": "error", "code": "rate_limited"}``,
and a client that keeps sending (a second full burst refused) is closed with
1008. A ``mark_read`` naming more than ``protocol.MAX_MARK_READ`` uids is
answered with an error frame (``too_many_uids``) and changes nothing. A
malformed message closes the socket (1007). Messages that need no I/O (an ack,
a refusal) are handled at once; the others return the awaitable that does it.
"""

from __future__ import annotations

import time
import uuid
from collections.abc import Awaitable

import msgspec

from ..core import errors, protocol
from ..core.errors import AuthError, TidingsError
from ..services.context import Services
from .connection import Connection
from .hub import Hub

_RATE_LIMITED = msgspec.json.encode(protocol.error_message(
    errors.RATE_LIMITED, f"more than {protocol.MESSAGE_RATE:g} messages a second (bursts of "
                    f"{protocol.MESSAGE_BURST:g}); this one was not processed"))


def _error(kind: errors.ErrorKind, message: str) -> bytes:
    return msgspec.json.encode(protocol.error_message(kind, message))


def on_text(conn: Connection, hub: Hub, services: Services,
            data: bytes) -> Awaitable[None] | None:
    now = time.monotonic()
    if conn.budget is None:
        conn.budget = protocol.MessageBudget(now)
    admit = conn.budget.take(now)
    if admit is protocol.Admit.REFUSE:
        conn.send(_RATE_LIMITED)
        return None
    if admit is protocol.Admit.CLOSE:
        conn.close(protocol.CLOSE_SLOW, "too many messages")
        return None
    try:
        message = protocol.parse(data)
    except protocol.BadMessage as exc:
        conn.close(protocol.CLOSE_BAD_FRAME, str(exc))
        return None
    refused = protocol.refusal(message)
    if refused is not None:
        conn.send(msgspec.json.encode(refused))
        return None
    if isinstance(message, protocol.Ack):
        hub.acked(conn, message.seq)
        return None
    if isinstance(message, protocol.MarkRead):
        return _mark_read(conn, services, message.uids)
    if isinstance(message, protocol.Refresh):
        return _refresh(conn, hub, services, message.token)
    conn.close(protocol.CLOSE_BAD_FRAME, "already authenticated")  # a second auth
    return None


async def _mark_read(conn: Connection, services: Services, uids: list[uuid.UUID]) -> None:
    try:
        await services.inbox.act(conn.user_id, "MARK_AS_READ", uids)
    except TidingsError as exc:
        conn.send(_error(exc.kind, exc.message))


async def _refresh(conn: Connection, hub: Hub, services: Services, token: str) -> None:
    try:
        identity = await services.verifier.verify(token)
    except AuthError as exc:
        conn.close(protocol.CLOSE_BAD_TOKEN, exc.message)
        return
    if identity.user_id != conn.user_id:
        conn.close(protocol.CLOSE_BAD_TOKEN, "refresh token is for another user")
        return
    hub.expire_at(conn, identity.expires_at)
    conn.send(msgspec.json.encode(protocol.refreshed_message(identity.expires_at)))
