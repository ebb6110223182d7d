"""The WebSocket protocol with no I/O: client messages, server messages, close codes, limits.

Server messages: ``counts``, ``notification`` and ``reset`` (their order per
socket is :mod:`.session`'s), ``preferences``, ``refreshed`` (a new token took effect) and
``error``; every frame of them is built here. Client messages: ``auth``
(first-message auth), ``ack``, ``mark_read``, ``refresh``; each socket may send
``MESSAGE_RATE`` a second (bursts of ``MESSAGE_BURST``, see :class:`MessageBudget`).
"""

from __future__ import annotations

import enum
import uuid
from collections.abc import Mapping
from typing import Annotated, Any

import msgspec
import orjson
from msgspec import Meta, Struct

from . import errors
from .replies import ACTIVE, Counts, notification_dict

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


def counts_frame(counts: Counts) -> bytes:
    return orjson.dumps({"type": "counts", **counts.as_dict()})


def preferences_frame(document: dict[str, Any]) -> bytes:
    return orjson.dumps({"type": "preferences", **document})


def reset_frame(seq: int) -> bytes:
    """Too much was missed to replay: refetch the inbox; ``seq`` is where live resumes."""
    return orjson.dumps({"type": "reset", "seq": seq})


def stored_frame(row: Mapping[str, Any], counts: Counts) -> bytes:
    """The notification frame of a stored row (a replay)."""
    return orjson.dumps({"type": "notification", "notification": notification_dict(row),
                         **counts.as_dict()})


def shared_part(content: dict[str, Any]) -> bytes:
    """The JSON members of a notification that every recipient shares: those of
    :func:`~tidings.core.replies.notification_dict` but id, uid, seq and user, in its
    order (a property test holds the two together), for a new (unread, ACTIVE) one.
    Built directly: this runs once per event, so once per recipient of single publishes."""
    get = content.get
    return orjson.dumps({
        "notification": {"message": get("message"), "model": get("model"),
                         "instance": get("instance"), "method": get("method"),
                         "changed_data": get("changed_data")},
        "type": get("type"), "title": get("title"), "data": get("data"), "is_read": False,
        "custom_info": get("custom_info"), "created_by": get("created_by"),
        "status": ACTIVE, "created_at": get("created_at"), "updated_at": get("updated_at"),
    })[1:-1]


#: A stored notification's frame around the part every recipient shares: id, uid, seq,
#: user (JSON), the shared part, total, read, unread.
_FRAME = (b'{"type":"notification","notification":{"id":%d,"uid":"%b","seq":%d,"user":{"id":%b},'
          b'%b},"total_notifications":%d,"read_notifications":%d,"unread_notifications":%d}')


def notification_frame(shared: bytes, user_id: str, nid: int | None, uid: str,
                       seq: int | None, counts: Counts | None) -> bytes:
    """A live notification's frame for one recipient, around its :func:`shared_part`
    (no counts for a live-only one)."""
    if nid is not None and seq is not None and counts is not None:
        return _FRAME % (nid, uid.encode(), seq, orjson.dumps(user_id), shared,
                         counts.total, counts.total - counts.unread, counts.unread)
    dumps = orjson.dumps
    tail = b"" if counts is None else dumps(counts.as_dict()).replace(b"{", b",", 1)[:-1]
    return b"".join((
        b'{"type":"notification","notification":{"id":', dumps(nid), b',"uid":',
        dumps(uid), b',"seq":', dumps(seq), b',"user":{"id":', dumps(user_id), b"},",
        shared, b"}", tail, b"}",
    ))


def with_counts(frame: bytes, counts: Counts) -> bytes:
    """A notification frame whose counts are replaced by ``counts`` (newer ones were shown)."""
    message = orjson.loads(frame)
    message.update(counts.as_dict())
    return orjson.dumps(message)


def refreshed_message(expires_at: float) -> dict[str, Any]:
    return {"type": "refreshed", "expires_at": int(expires_at)}


def error_message(kind: errors.ErrorKind, message: str) -> dict[str, Any]:
    return {"type": "error", "code": kind.code, "message": message}


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
        return error_message(errors.TOO_MANY_UIDS,
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
