"""The WebSocket protocol with no I/O: client messages, server messages, close codes, limits.

Server messages: ``counts``, ``notification`` and ``reset`` (their order per
socket is :mod:`.session`'s), ``refreshed`` (a new token took effect) and
``error``. Client messages: ``auth`` (first-message auth), ``ack``,
``mark_read``, ``refresh``; each socket may send ``MESSAGE_RATE`` a second
(bursts of ``MESSAGE_BURST``, see :class:`MessageBudget`).
"""

from __future__ import annotations

import enum
import uuid
from typing import Annotated, Any

import msgspec
from msgspec import Meta, Struct

# Close codes (RFC 6455 ranges: 1xxx protocol, 4xxx application).
CLOSE_BAD_TOKEN = 4001
CLOSE_ORIGIN = 4003
CLOSE_TOO_MANY = 4008
CLOSE_SLOW = 1008
#: The reason of a 1008 for a socket that did not take what was sent (not a message flood).
SLOW_CONSUMER = "slow consumer"
CLOSE_RESTART = 1012
CLOSE_BAD_FRAME = 1007
CLOSE_INTERNAL = 1011

Token = Annotated[str, Meta(min_length=1, max_length=8192)]


class Auth(Struct, tag="auth", forbid_unknown_fields=True):
    token: Token
    since: Annotated[int, Meta(ge=0)] | None = None


class Ack(Struct, tag="ack", forbid_unknown_fields=True):
    seq: Annotated[int, Meta(ge=0)]


class MarkRead(Struct, tag="mark_read", forbid_unknown_fields=True):
    uids: Annotated[list[uuid.UUID], Meta(min_length=1)]  # at most MAX_MARK_READ: refusal()


class Refresh(Struct, tag="refresh", forbid_unknown_fields=True):
    token: Token


ClientMessage = Auth | Ack | MarkRead | Refresh
_decoder = msgspec.json.Decoder(ClientMessage)


class BadMessage(ValueError):
    """A client frame that is not a valid protocol message; the socket is closed with 1007."""


def parse(data: str | bytes) -> ClientMessage:
    try:
        return _decoder.decode(data)
    except (msgspec.ValidationError, msgspec.DecodeError) as exc:
        raise BadMessage(str(exc).replace("`", "'")) from None


def refreshed_message(expires_at: float) -> dict[str, Any]:
    return {"type": "refreshed", "expires_at": int(expires_at)}


def error_message(code: str, message: str) -> dict[str, Any]:
    return {"type": "error", "code": code, "message": message}


#: Client messages per second per socket, and the burst allowed above that rate.
MESSAGE_RATE = 20.0
MESSAGE_BURST = 40.0
#: Most uids one ``mark_read`` message may name; more is refused with an error frame.
MAX_MARK_READ = 100


class Admit(enum.Enum):
    ALLOW = "allow"
    REFUSE = "refuse"  # answer with a ``rate_limited`` error frame
    CLOSE = "close"  # sustained abuse: close with 1008


class MessageBudget:
    """A token bucket for one socket's messages: ``MESSAGE_RATE`` a second, bursts of
    ``MESSAGE_BURST``.

    Refusals draw on a second bucket of the same size and rate: a client that
    keeps sending past the limit empties it (a second full bucket of refused
    messages) and is closed; one that slows down refills both. The caller
    hands in a monotonic time in seconds.
    """

    __slots__ = ("refusals", "stamp", "tokens")

    def __init__(self, now: float):
        self.tokens = MESSAGE_BURST
        self.refusals = MESSAGE_BURST
        self.stamp = now

    def take(self, now: float) -> Admit:
        gain = max(0.0, now - self.stamp) * MESSAGE_RATE
        self.stamp = max(self.stamp, now)
        self.tokens = min(MESSAGE_BURST, self.tokens + gain)
        self.refusals = min(MESSAGE_BURST, self.refusals + gain)
        if self.tokens >= 1:
            self.tokens -= 1
            return Admit.ALLOW
        if self.refusals >= 1:
            self.refusals -= 1
            return Admit.REFUSE
        return Admit.CLOSE


def refusal(message: ClientMessage) -> dict[str, Any] | None:
    """The error frame for a well-formed message that is not processed, or None."""
    if isinstance(message, MarkRead) and len(message.uids) > MAX_MARK_READ:
        return error_message("too_many_uids",
                             f"mark_read names at most {MAX_MARK_READ} uids per message")
    return None


def pick_subprotocol(offered: str) -> str | None:
    """The offered ``Sec-WebSocket-Protocol`` value that carries a JWT (header.payload.sig)."""
    if not offered:
        return None
    for value in (part.strip() for part in offered.split(",")):
        if value.count(".") == 2:
            return value
    return None
