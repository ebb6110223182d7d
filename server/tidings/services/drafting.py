"""From a publish request to a draft to store, and from what was stored to its answer and event.

What may live here: pure shaping of publish requests, answers (idempotent repeats
included) and bus events.

A publish's uids come from one random uuid4, its *base*: recipient ``i`` gets the
base with ``i`` XORed into its last 48 bits (:func:`uids`), so every uid is a
well-formed uuid4, distinct within the publish, and the whole list is fixed by
the base (a streamed publish's remainder is completed from it). One random
draw per publish instead of one per recipient.
"""

from __future__ import annotations

import hashlib
import os
import uuid
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import msgspec

from ..core import errors, events
from ..core.replies import CONTENT_FIELDS
from ..core.requests import PublishRequest
from ..store import publish as store

_LOW = (1 << 48) - 1
#: A uuid4's fixed bits: version 4 and the RFC 4122 variant (as :func:`uuid.uuid4` sets them).
_KEEP = ~((0xF000 << 64) | (0xC000 << 48))
_SET = (0x4000 << 64) | (0x8000 << 48)


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


def base() -> str:
    """A new random base: a uuid4 as text (what ``str(uuid.uuid4())`` gives, without
    building the object)."""
    h = f"{int.from_bytes(os.urandom(16)) & _KEEP | _SET:032x}"
    return f"{h[:8]}-{h[8:12]}-{h[12:16]}-{h[16:20]}-{h[20:]}"


def draft(req: PublishRequest, users: list[str],
          owed: dict[str, Any] | None = None) -> store.Draft:
    """The draft of ``req`` for ``users``, each recipient's uid chosen now; ``owed``: its
    push options when they are not the request's own (a declared type's)."""
    return store.Draft(users, uids(base(), len(users)), content(req),
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
    for part in parts:
        out += [{"recipient": u, "uid": uid, "seq": r.seq}
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
    """The bus event of a publish: the one place a notification event is made, for a
    publish just stored (rows read back included), one the relay read back
    (:func:`tidings.store.publish.read_back`) and a live-only one (every row
    :data:`~tidings.store.publish.NOT_STORED`)."""
    d = stored.draft
    return events.notification_event(
        d.content | {"created_at": stored.created_at, "updated_at": stored.created_at},
        [[u, r.id, uid, r.seq, r.total, r.unread, r.version]
         for u, uid, r in zip(d.users, d.uids, stored.rows, strict=True)],
        d.push)


def request_hash(req: PublishRequest) -> str:
    """What tells a request repeating an idempotency key from another one."""
    return hashlib.sha256(msgspec.json.encode(req)).hexdigest()


def earlier(found: Mapping[str, Any], request_hash: str) -> Answer:
    """The answer to a request repeating an idempotency key: the first request's
    (``found``: its key's row), a 409 for another body or for a publish still in progress."""
    if found["request_hash"] != request_hash:
        raise errors.IDEMPOTENCY_KEY_REUSED.error()
    if found["status"] is None:
        raise errors.PUBLISH_IN_PROGRESS.error(
            "a publish with this idempotency_key is still being stored; ask again for its answer")
    return Answer(found["status"], found["response"])
