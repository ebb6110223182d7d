"""The bus event format: what a publisher writes to Redis and a node reads back.

Two kinds of event, both one JSON object:

- notification: ``{"k": "n", "n": {content}, "r": [[user_id, id, uid, seq,
  total, unread, version], ...], "push": {...} | null}``: one publish, with the
  content every recipient shares written once and one short row per recipient
  (``id``/``seq`` are null for a live-only notification).
- counts: ``{"k": "c", "u": user_id, "c": [total, unread, version]}``: a user's
  counts changed (mark read, remove).
- preferences: ``{"k": "p", "u": user_id, "p": {document}}``: a user's preferences
  changed; each of their sockets gets ``{"type": "preferences", ...the document}``
  (no seq, no counts: sent as it comes, like a live-only notification).

A publisher splits a notification event per node (:class:`Parts`: the bus
route joins the rows of the users a node holds), so a node only receives rows
for users it holds. Everything here is pure.
"""

from __future__ import annotations

from collections.abc import Container, Iterator
from dataclasses import dataclass
from typing import Any, NamedTuple

import orjson

from . import protocol
from .replies import Counts

NOTIFICATION = "n"
COUNTS = "c"
PREFERENCES = "p"


def notification_event(content: dict[str, Any], rows: list[list[Any]],
                       push: dict[str, Any] | None) -> dict[str, Any]:
    """A notification event; ``content`` holds CONTENT_FIELDS plus created_at/updated_at,
    ``rows`` one ``[user_id, id, uid, seq, total, unread, version]`` per recipient."""
    return {"k": NOTIFICATION, "n": content, "r": rows, "push": push}


def counts_event(user_id: str, counts: Counts) -> dict[str, Any]:
    return {"k": COUNTS, "u": user_id, "c": [counts.total, counts.unread, counts.version]}


def preferences_event(user_id: str, document: dict[str, Any]) -> dict[str, Any]:
    return {"k": PREFERENCES, "u": user_id, "p": document}


def encode(event: dict[str, Any]) -> bytes:
    return orjson.dumps(event)


@dataclass(frozen=True, slots=True)
class Parts:
    """An event encoded so that its part for any set of users is a concatenation.

    ``rows`` is the JSON text of each row, joined by newlines (JSON text holds none),
    and ``users`` the user of each row: ``head + b",".join(row for user, row in
    zip(users, rows.split(b"\n")) if user in chosen) + tail`` is the JSON of the
    event with only the chosen users' rows (nothing when no row's user is chosen).
    Lets the bus route and split events where the users are known (a Redis script)
    without re-encoding them.
    """

    head: bytes
    users: list[str]
    rows: bytes
    tail: bytes


def encode_parts(event: dict[str, Any]) -> Parts:
    """The :class:`Parts` of an event (a counts event is one part: head, one empty row)."""
    if event["k"] != NOTIFICATION:
        return Parts(encode(event), [event["u"]], b"", b"")
    shared = orjson.dumps({k: v for k, v in event.items() if k != "r"})
    # Appended row by row: orjson's own result of a small value keeps a buffer of about
    # 4 KiB, 40 MiB held for a 10,000-recipient publish if the rows were kept apart.
    rows = bytearray()
    for row in event["r"]:
        rows += orjson.dumps(row)
        rows += b"\n"
    del rows[-1:]
    return Parts(shared[:-1] + b',"r":[', [row[0] for row in event["r"]], bytes(rows), b"]}")


def decode(data: bytes | str) -> dict[str, Any]:
    event = orjson.loads(data)
    if not isinstance(event, dict) or event.get("k") not in (NOTIFICATION, COUNTS, PREFERENCES):
        raise ValueError("not a Tidings bus event")
    return event


class Delivery(NamedTuple):
    """One user's share of an event: its socket frame (encoded once) and what orders it."""

    user_id: str
    kind: str  # NOTIFICATION, COUNTS or PREFERENCES
    seq: int | None  # None: live-only notification, or a counts update
    uid: str | None  # the notification's uid (None for counts)
    counts: Counts | None  # None for a live-only notification
    frame: bytes  # the message, JSON-encoded

    @property
    def version(self) -> int | None:
        return self.counts.version if self.counts is not None else None


def deliveries(event: dict[str, Any],
               only: Container[str] | None = None) -> Iterator[Delivery]:
    """The socket messages of an event, one per user (those in ``only``, if given: the
    others' frames are not built), in the contract's shapes.

    The part of a notification every recipient shares is encoded once per
    event; each recipient's frame only adds its id, uid, seq, user and counts.
    """
    if event["k"] != NOTIFICATION and only is not None and event["u"] not in only:
        return
    if event["k"] == COUNTS:
        total, unread, version = event["c"]
        counts = Counts(total, unread, version)
        yield Delivery(event["u"], COUNTS, None, None, counts, protocol.counts_frame(counts))
        return
    if event["k"] == PREFERENCES:
        yield Delivery(event["u"], PREFERENCES, None, None, None,
                       protocol.preferences_frame(event["p"]))
        return
    shared = protocol.shared_part(event["n"])
    frame = protocol.notification_frame
    for user_id, nid, uid, seq, total, unread, version in event["r"]:
        if only is not None and user_id not in only:
            continue
        counts = Counts(total, unread, version) if total is not None else None
        yield Delivery(user_id, NOTIFICATION, seq, uid, counts,
                       frame(shared, user_id, nid, uid, seq, counts))
