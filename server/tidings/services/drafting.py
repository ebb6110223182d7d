"""From a publish request to a draft to store, and from what was stored to its answer and event.

What may live here: pure shaping of publish requests, answers and bus events.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from typing import Any

import msgspec

from ..core import events
from ..core.schemas import PublishRequest
from ..core.shapes import CONTENT_FIELDS
from ..store import publish as store


@dataclass(frozen=True, slots=True)
class Answer:
    status: int
    body: dict[str, Any]


def draft(req: PublishRequest, users: list[str],
          owed: dict[str, Any] | None = None) -> store.Draft:
    """The draft of ``req`` for ``users``, each recipient's uid chosen now; ``owed``: its
    push options when they are not the request's own (a declared type's)."""
    return store.Draft(users, [uuid.uuid4() for _ in users], content(req),
                       push(req) if owed is None else owed)


def content(req: PublishRequest) -> dict[str, Any]:
    content = {f: getattr(req, f) for f in CONTENT_FIELDS}
    for name in ("created_by", "instance"):
        if content[name] is not None:
            content[name] = str(content[name])
    return content


def body(stored: store.Published) -> dict[str, Any]:
    """The 201 body: each recipient's uid and seq."""
    return {"created": len(stored.rows), "notifications": [
        {"recipient": s.user_id, "uid": str(s.uid), "seq": s.seq} for s in stored.rows]}


def push(req: PublishRequest) -> dict[str, Any]:
    return msgspec.to_builtins(req.push) if req.push is not None else {"when": "offline"}


def event(draft: store.Draft, stored: store.Published) -> dict[str, Any]:
    return events.notification_event(
        draft.content | {"created_at": stored.created_at, "updated_at": stored.created_at},
        (events.Recipient(s.user_id, s.id, str(s.uid), s.seq, s.counts) for s in stored.rows),
        draft.push)
