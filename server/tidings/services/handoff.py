"""The hand-off plan: the push and e-mail jobs a routed publish owes.

What may live here: pure planning (no I/O) from a notification bus event and the
set of its users found online to the :class:`~tidings.store.push_jobs.OwedPush`
rows written when its outbox row is retired.

Contract, per stored recipient, by :func:`tidings.core.push.decide`: NOW → a job
due now; LATER (``unread_after``) → a job due after ``push.after`` seconds that
sends only if the notification is still unread then; NEVER → nothing. A
live-only recipient (no stored row) owes nothing: a push job refers to a stored
notification.

E-mail (:func:`emails`): a publish of a type that uses the ``email`` channel owes
one e-mail job per stored recipient, due now whatever their presence; whether it
is sent, held for a digest or deferred is decided when it is due (the e-mail
worker), not here.
"""

from __future__ import annotations

from collections.abc import Callable, Collection
from typing import Any

import msgspec

from ..core.push import Decision, decide
from ..core.schemas import PushOptions
from ..store.push_jobs import OwedPush


def owed(event: dict[str, Any], online: Collection[str]) -> list[OwedPush]:
    """The pushes ``event`` owes when ``online`` holds its users that have a socket."""
    options = event.get("push") or {}
    push = msgspec.convert(options, PushOptions)
    # The decision depends on the options and on being online only: two decisions per
    # publish, not one per recipient (and none at all when neither owes a push).
    when = {True: decide(push, True), False: decide(push, False)}
    jobs = []
    for decision in (Decision.NOW, Decision.LATER):
        if decision not in when.values():
            continue
        ids = [nid for user_id, nid, *_ in event["r"]
               if nid is not None and when[user_id in online] is decision]
        if ids and decision is Decision.NOW:
            jobs.append(OwedPush(options, ids))
        elif ids:
            jobs.append(OwedPush(options, ids, delay=push.after or 0.0, check_unread=True))
    return jobs


def no_email(type_name: str | None) -> bool:
    """No type sends e-mail (a publishing service without declared types)."""
    return False


def emails(event: dict[str, Any], uses_email: Callable[[str | None], bool]) -> list[OwedPush]:
    """The e-mail jobs ``event`` owes: one per stored recipient when its type uses e-mail."""
    if not uses_email(event["n"].get("type")):
        return []
    ids = [nid for _, nid, *_ in event["r"] if nid is not None]
    return [OwedPush(event.get("push") or {}, ids, channel="email")] if ids else []
