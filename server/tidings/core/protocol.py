"""The WebSocket protocol with no I/O: client messages, server messages, close codes, ordering.

Server messages: ``counts``, ``notification`` (built in :mod:`.events`),
``reset`` (too many missed: refetch), ``refreshed`` (a new token took effect)
and ``error``. Client messages: ``auth`` (first-message auth), ``ack``,
``mark_read``, ``refresh``. :class:`Cursor` decides, per socket, whether a
live notification is sent, skipped as already sent, or first needs the gap
before it filled from the database, so each socket sees every seq once, in
order.
"""

from __future__ import annotations

import enum
import uuid
from typing import Annotated, Any

import msgspec
from msgspec import Meta, Struct

from .schemas import MAX_UIDS
from .shapes import Counts

# Close codes (RFC 6455 ranges: 1xxx protocol, 4xxx application).
CLOSE_BAD_TOKEN = 4001
CLOSE_ORIGIN = 4003
CLOSE_TOO_MANY = 4008
CLOSE_SLOW = 1008
CLOSE_RESTART = 1012
CLOSE_BAD_FRAME = 1007
CLOSE_TOO_BIG = 1009

Token = Annotated[str, Meta(min_length=1, max_length=8192)]


class Auth(Struct, tag="auth", forbid_unknown_fields=True):
    token: Token
    since: Annotated[int, Meta(ge=0)] | None = None


class Ack(Struct, tag="ack", forbid_unknown_fields=True):
    seq: Annotated[int, Meta(ge=0)]


class MarkRead(Struct, tag="mark_read", forbid_unknown_fields=True):
    uids: Annotated[list[uuid.UUID], Meta(min_length=1, max_length=MAX_UIDS)]


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


def counts_message(counts: Counts) -> dict[str, Any]:
    return {"type": "counts", **counts.as_dict()}


def reset_message(seq: int) -> dict[str, Any]:
    """Too much was missed to replay: refetch the inbox; ``seq`` is where live resumes."""
    return {"type": "reset", "seq": seq}


def refreshed_message(expires_at: float) -> dict[str, Any]:
    return {"type": "refreshed", "expires_at": int(expires_at)}


def error_message(code: str, message: str) -> dict[str, Any]:
    return {"type": "error", "code": code, "message": message}


class Verdict(enum.Enum):
    SEND = "send"
    SKIP = "skip"
    FILL = "fill"  # seqs between the last sent and this one must come first


class Cursor:
    """What one socket has been sent: the last notification seq and counts version."""

    __slots__ = ("seq", "version")

    def __init__(self, seq: int, version: int = 0):
        self.seq = seq
        self.version = version

    def notification(self, seq: int | None) -> Verdict:
        """The verdict on a stored (seq) or live-only (None) notification."""
        if seq is None:
            return Verdict.SEND
        if seq <= self.seq:
            return Verdict.SKIP
        return Verdict.SEND if seq == self.seq + 1 else Verdict.FILL

    def counts(self, version: int | None) -> bool:
        """True if a counts update of ``version`` is newer than what the socket shows."""
        if version is None:
            return True
        if version <= self.version:
            return False
        self.version = version
        return True

    def sent(self, seq: int | None, version: int | None = None) -> None:
        if seq is not None and seq > self.seq:
            self.seq = seq
        if version is not None and version > self.version:
            self.version = version


def origin_allowed(origin: str | None, allowed: tuple[str, ...], host: str) -> bool:
    """Browsers send Origin: it must be listed (or ``*``), or be the server's own origin.

    Clients that send no Origin (servers, apps) are not browsers and pass.
    """
    if origin is None:
        return True
    if "*" in allowed or origin in allowed:
        return True
    _, _, rest = origin.partition("://")
    return rest == host


def pick_subprotocol(offered: str) -> str | None:
    """The offered ``Sec-WebSocket-Protocol`` value that carries a JWT (header.payload.sig)."""
    for value in (part.strip() for part in offered.split(",")):
        if value.count(".") == 2:
            return value
    return None
