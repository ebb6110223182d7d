"""From a publish request to a draft to store, and from what was stored to its answer and event.

What may live here: pure shaping of publish requests, answers and bus events.

A publish's uids come from one random uuid4, its *base*: recipient ``i`` gets the
base with ``i`` XORed into its last 48 bits (:func:`uids`), so every uid is a
well-formed uuid4, distinct within the publish, and the whole list is fixed by
the base (a streamed publish's remainder is completed from it). One random
draw per publish instead of one per recipient.
"""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import msgspec

from ..core import events
from ..core.schemas import PublishRequest
from ..core.shapes import CONTENT_FIELDS
from ..store import publish as store

_LOW = (1 << 48) - 1


@dataclass(frozen=True, slots=True)
class Answer:
    status: int
    body: dict[str, Any]


def uids(base: uuid.UUID | str, n: int) -> list[str]:
    """The uids of a publish to ``n`` recipients whose base is ``base`` (the first is the
    base itself)."""
    text = str(base)
    if n == 1:
        return [text]
    head, low = text[:24], int(text[24:], 16)
    return [f"{head}{low ^ i:012x}" for i in range(n)]


def draft(req: PublishRequest, users: list[str],
          owed: dict[str, Any] | None = None) -> store.Draft:
    """The draft of ``req`` for ``users``, each recipient's uid chosen now; ``owed``: its
    push options when they are not the request's own (a declared type's)."""
    return store.Draft(users, uids(uuid.uuid4(), len(users)), content(req),
                       push(req) if owed is None else owed)


def content(req: PublishRequest) -> dict[str, Any]:
    content = {f: getattr(req, f) for f in CONTENT_FIELDS}
    for name in ("created_by", "instance"):
        if content[name] is not None:
            content[name] = str(content[name])
    return content


def body(parts: Sequence[store.Published], pending: store.Draft | None = None) -> dict[str, Any]:
    """The answer's body: each recipient's uid and seq, the parts of a publish in order.

    With ``pending`` (recipients accepted but not stored yet): their uids with no seq,
    and how many they are.
    """
    out = []
    seq = store.SEQ
    for part in parts:
        out += [{"recipient": u, "uid": uid, "seq": r[seq]}
                for u, uid, r in zip(part.draft.users, part.draft.uids, part.rows, strict=True)]
    created = len(out)
    if pending is None:
        return {"created": created, "notifications": out}
    out += [{"recipient": u, "uid": uid, "seq": None}
            for u, uid in zip(pending.users, pending.uids, strict=True)]
    return {"created": created, "pending": len(pending.users), "notifications": out}


def push(req: PublishRequest) -> dict[str, Any]:
    return msgspec.to_builtins(req.push) if req.push is not None else {"when": "offline"}


def event(stored: store.Published) -> dict[str, Any]:
    """The bus event of a stored publish (one row per recipient, read back ones included)."""
    d = stored.draft
    return events.rows_event(
        d.content | {"created_at": stored.created_at, "updated_at": stored.created_at},
        [[u, r[0], uid, r[1], r[2], r[3], r[4]]
         for u, uid, r in zip(d.users, d.uids, stored.rows, strict=True)],
        d.push)
