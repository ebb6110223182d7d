"""The hand-off of committed publishes: route their events, plan the jobs they owe, and
retire their outbox rows with those jobs.

:class:`HandOff` does it for the publishing request (:mod:`.publishing`,
:mod:`.streaming`); the relay (:mod:`tidings.workers.relay`) uses its
:meth:`~HandOff.route` and :meth:`~HandOff.owed` for the rows a request left.

Contracts:

- Routing: where the node itself holds sockets of the recipients (``here``),
  it delivers to them directly, and the bus routes the events to the other
  nodes only (one round trip for all the events, in commit order). The users
  found online, here or elsewhere, decide the pushes owed.
- :meth:`HandOff.hand_off` never raises: the publishes are stored, so whatever
  fails is left to the relay (their outbox rows stay).
- Retiring an outbox row and writing its jobs is one transaction, shared by
  the retires of ``RETIRE_LINGER`` seconds, run in the background after the
  answer; a failure leaves the row to the relay (whose grace is seconds).
  :meth:`HandOff.retired` waits for the retires queued.

The plan, per stored recipient, by :func:`tidings.core.push.decide`: NOW → a
job due now; LATER (``unread_after``) → a job due after ``push.after``
seconds that sends only if the notification is still unread then; NEVER →
nothing. A live-only recipient (no stored row) owes nothing: a push job refers
to a stored notification. A publish of a type that uses the ``email`` channel
owes one e-mail job per stored recipient, due now whatever their presence;
whether it is sent, held for a digest or deferred is decided when it is due
(the e-mail worker), not here.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Collection, Sequence
from dataclasses import dataclass
from typing import Any

import msgspec

from ..bus.publisher import Publisher
from ..core.errors import BusUnavailable, StoreError, StoreUnavailable, Unavailable
from ..core.push import Decision, decide
from ..core.requests import PushOptions
from ..store import db, outbox
from ..store.publish import Published
from ..store.push_jobs import OwedPush
from . import drafting
from .coalesce import Coalescer

log = logging.getLogger(__name__)

#: Seconds the retires of routed publishes gather before one statement deletes their
#: outbox rows: nobody waits on a retire, and at 1,000 publishes/s this makes one
#: statement of about ten instead of one of two or three.
RETIRE_LINGER = 0.01

#: Delivers events to the node's own sockets; returns the users it holds sockets of.
Here = Callable[[Sequence[dict[str, Any]]], Collection[str]]
#: Whether a notification type sends e-mail (its e-mail jobs are planned at hand-off).
UsesEmail = Callable[[str | None], bool]


def owed(stored: Published, online: Collection[str]) -> list[OwedPush]:
    """The pushes ``stored`` owes when ``online`` holds its users that have a socket."""
    options = stored.draft.push or {}
    push = msgspec.convert(options, PushOptions)
    # The decision depends on the options and on being online only: two decisions per
    # publish, not one per recipient (and none at all when neither owes a push).
    when = {True: decide(push, True), False: decide(push, False)}
    jobs = []
    for decision in (Decision.NOW, Decision.LATER):
        if decision not in when.values():
            continue
        ids = [r.id for user_id, r in zip(stored.draft.users, stored.rows, strict=True)
               if r.id is not None and when[user_id in online] is decision]
        if ids and decision is Decision.NOW:
            jobs.append(OwedPush(options, ids))
        elif ids:
            jobs.append(OwedPush(options, ids, delay=push.after or 0.0, check_unread=True))
    return jobs


def no_email(type_name: str | None) -> bool:
    """No type sends e-mail (a publishing service without declared types)."""
    return False


def emails(stored: Published, uses_email: UsesEmail) -> list[OwedPush]:
    """The e-mail jobs ``stored`` owes: one per stored recipient when its type uses e-mail."""
    if not uses_email(stored.draft.content.get("type")):
        return []
    ids = [r.id for r in stored.rows if r.id is not None]
    return [OwedPush(stored.draft.push or {}, ids, channel="email")] if ids else []


@dataclass(frozen=True, slots=True)
class Committed:
    """A stored publish and the jobs it owes (None: not routed, the relay finishes it)."""

    stored: Published
    owed: list[OwedPush] | None


class HandOff:
    def __init__(self, pool: db.Pool, publisher: Publisher,
                 report: Callable[[Unavailable], None], *,
                 here: tuple[str, Here] | None = None, uses_email: UsesEmail = no_email):
        """``here``: this node's id and its local delivery; ``uses_email``: whether a
        type's notifications owe e-mail jobs; ``report``: where outages go (health)."""
        self._pool = pool
        self._publisher = publisher
        self._report = report
        self._here = here
        self._uses_email = uses_email
        self._retires: Coalescer[tuple[int, list[OwedPush]], None] = Coalescer(
            self._retire, max_items=1000, linger=RETIRE_LINGER)

    async def hand_off(self, stored: Sequence[Published]) -> list[Committed]:
        """Route the events of new publishes; plan their jobs from who was online."""
        plans: dict[int, list[OwedPush]] = {}
        try:
            new = [s for s in stored if s.outbox_id]
            online = await self.route([drafting.event(s) for s in new]) if new else None
            if online is not None:
                plans = {s.outbox_id: self.owed(s, online) for s in new}
        except Exception:  # a stored publish is never answered with an error
            log.exception("the hand-off of stored publishes failed; the outbox relay will retry")
        return [Committed(s, plans.get(s.outbox_id)) for s in stored]

    async def route(self, evs: Sequence[dict[str, Any]]) -> Collection[str] | None:
        """Deliver committed events here and put them on the bus for the other nodes, in
        order: the users online, or None if the bus failed (their outbox rows stay for the
        relay)."""
        node, local = self._here if self._here is not None else ("", None)
        held = local(evs) if local is not None else ()
        try:
            online = await self._publisher.publish(evs, skip=node)
        except BusUnavailable as exc:
            self._report(exc)
            return None
        online.update(held)
        return online

    def owed(self, stored: Published, online: Collection[str]) -> list[OwedPush]:
        """The jobs a routed publish owes: pushes (by presence) and e-mails."""
        return owed(stored, online) + emails(stored, self._uses_email)

    def retire_later(self, done: Committed) -> None:
        """Retire the outbox row of a routed publish and write its jobs, in the background."""
        if done.owed is not None and done.stored.outbox_id:
            self._retires.post((done.stored.outbox_id, done.owed))

    async def retired(self) -> None:
        """Returns once the outbox retires queued so far are done (or failed, left to
        the relay)."""
        await self._retires.idle()

    async def _retire(self, items: list[tuple[int, list[OwedPush]]]) -> list[None]:
        try:
            await outbox.retire(self._pool, dict(items))
        except StoreUnavailable as exc:
            self._report(exc)
        except StoreError as exc:
            log.warning("outbox rows not retired, the relay will: %s", exc)
        except Exception:  # nobody awaits a retire: never answer one with an exception
            log.exception("outbox rows not retired, the relay will")
        return [None] * len(items)
