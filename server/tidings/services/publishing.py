"""Publishing a notification: store it durably, route it live, hand its pushes off.

Contracts:

- 2xx if and only if stored. Each recipient's uid is chosen before the first
  attempt and the publish statement is idempotent on it, so after a lost
  connection (outcome unknown) the publish is retried until PostgreSQL answers
  (see :mod:`.attempts`): a retry stores nothing twice and allocates no second
  seq. Every error answer means "not stored"; ``StoreUnavailable`` (a 503) when
  PostgreSQL cannot be reached.
- Concurrent publishes (without an idempotency key) commit together in one
  statement. If that statement fails for any reason (PostgreSQL refuses a
  draft, the encoder refuses one, the connection is lost), its drafts are
  stored one by one, each failing or succeeding on its own.
- After the commit the events go to Redis (in commit order, one round trip)
  and the users found online decide the pushes owed (:mod:`.handoff`); then
  the producer is answered. Retiring the outbox row and writing its push jobs
  (one transaction, shared by the retires of one moment) happens after the
  answer, in the background: until then the row stays, and the relay only
  claims rows older than its grace. If Redis or that transaction fails, the
  answer is still 201: the outbox row stays and the relay finishes the
  hand-off. A socket may see an event twice only across such a retry (the
  gateway drops seqs it already sent). :meth:`Publishing.retired` waits for the
  retires queued.
- Where the node itself holds sockets of the recipients (``here``), it
  delivers to them directly, before routing, and the bus routes the events to
  the other nodes only: no Redis hop, and no second copy (nor second
  delivery-log entry) for those sockets. After a failed route, the relay
  routes again, and the sessions drop what they already sent.
- With an ``idempotency_key``, the same key and body return the first answer
  and store nothing new; the same key with another body is a 409.
- ``persist: false`` stores nothing (no seq, counts, replay or push); it is a
  503 when Redis is down, since nothing would send it later.
"""

from __future__ import annotations

import hashlib
import logging
import uuid
from collections.abc import Callable, Collection, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

import msgspec

from ..bus.publisher import Publisher
from ..core import events
from ..core.errors import BusUnavailable, Conflict, StoreError, StoreUnavailable, Unavailable
from ..core.schemas import PublishRequest
from ..store import db, idempotency, outbox, scheduled
from ..store import publish as store
from ..store.push_jobs import OwedPush
from . import drafting, handoff
from .attempts import OutcomeUnknown, attempt, settle
from .coalesce import Coalescer
from .drafting import Answer
from .health import Health

log = logging.getLogger(__name__)

#: Most notification rows one grouped statement stores (a larger publish goes alone).
GROUP_ROWS = 10_000
_ALONE = "alone"  # the group failed: store this draft by itself
_UNKNOWN = "unknown"  # the group's outcome is unknown: settle this draft by itself


#: Delivers events to the node's own sockets; returns the users it holds sockets of.
Here = Callable[[Sequence[dict[str, Any]]], Collection[str]]
#: The push options a publish owes.
PlanPush = Callable[[PublishRequest], dict[str, Any]]
#: Whether a notification type sends e-mail (its e-mail jobs are planned at hand-off).
UsesEmail = Callable[[str | None], bool]


@dataclass(frozen=True, slots=True)
class _Committed:
    stored: store.Published
    owed: list[OwedPush] | None  # None: not routed, the relay finishes the hand-off


class Publishing:
    def __init__(self, pool: db.Pool, publisher: Publisher, health: Health | None = None, *,
                 settle_within: float = 30.0, here: tuple[str, Here] | None = None,
                 plan_push: PlanPush = drafting.push, uses_email: UsesEmail = handoff.no_email):
        """``here``: this node's id and its local delivery (see the module); ``plan_push``:
        the push options a publish owes (a declared type's defaults under its own);
        ``uses_email``: whether a type's notifications owe e-mail jobs."""
        self._pool = pool
        self._plan_push = plan_push
        self._uses_email = uses_email
        self._publisher = publisher
        self._here = here
        self._health = health
        self._settle_within = settle_within
        self._commits: Coalescer[store.Draft, _Committed | str] = Coalescer(
            self._commit, weight=lambda d: len(d.users), max_weight=GROUP_ROWS)
        self._retires: Coalescer[tuple[int, list[OwedPush]], None] = Coalescer(
            self._retire, max_items=1000)

    def report(self, exc: Unavailable) -> None:
        if self._health is not None:
            self._health.report(exc)

    async def publish(self, req: PublishRequest, users: list[str]) -> Answer:
        """Publish (or schedule, with ``delay``) ``req`` to ``users`` (distinct ids)."""
        try:
            if req.delay:
                return await self._schedule(req)
            if not req.persist:
                return await self._live_only(req, users)
            draft = drafting.draft(req, users, self._plan_push(req))
            if req.idempotency_key is None:
                done = await self._commits.submit(draft)
                if isinstance(done, str):
                    done = await self._alone(draft, unknown=done == _UNKNOWN)
            else:
                done = await self._keyed(req, draft)
                if isinstance(done, Answer):
                    return done
        except Unavailable as exc:
            self.report(exc)
            raise
        if done.owed is not None and done.stored.outbox_id:
            self._retires.post((done.stored.outbox_id, done.owed))
        return Answer(201, drafting.body(done.stored))

    async def retired(self) -> None:
        """Returns once the outbox retires queued so far are done (or failed, left to
        the relay)."""
        await self._retires.idle()

    async def _commit(self, drafts: list[store.Draft]) -> list[_Committed | str]:
        """Store the drafts in one statement, then route their events together."""
        try:
            prepared = store.prepare(drafts)
            stored = await attempt(self._pool, lambda conn: store.publish(conn, prepared))
        except OutcomeUnknown as exc:
            if len(drafts) > 1:
                log.warning("a grouped publish lost its connection (%s); settling its %d drafts"
                            " one by one", exc, len(drafts))
            return [_UNKNOWN] * len(drafts)
        except StoreUnavailable:
            raise  # nothing was sent: the same for every draft
        except Exception as exc:  # a draft refused, by PostgreSQL or by the encoder
            if len(drafts) == 1:
                raise
            log.warning("a grouped publish failed (%s); storing its %d drafts one by one",
                        type(exc).__name__, len(drafts))
            return [_ALONE] * len(drafts)
        return list(await self._hand_off(drafts, stored))

    async def _alone(self, draft: store.Draft, *, unknown: bool) -> _Committed:
        prepared = store.prepare([draft])
        stored = await settle(
            lambda: attempt(self._pool, lambda conn: store.publish(conn, prepared)),
            unknown=unknown, within=self._settle_within)
        [done] = await self._hand_off([draft], stored)
        return done

    async def _keyed(self, req: PublishRequest, draft: store.Draft) -> Answer | _Committed:
        key = req.idempotency_key
        assert key is not None
        request_hash = hashlib.sha256(msgspec.json.encode(req)).hexdigest()
        prepared = store.prepare([draft])

        async def once(conn: db.Connection) -> Answer | store.Published:
            async with db.transaction(conn):
                earlier = await idempotency.claim(conn, key, request_hash)
                if earlier is not None:
                    if earlier["request_hash"] != request_hash:
                        raise Conflict("idempotency_key was used with a different request",
                                       code="idempotency_key_reused")
                    return Answer(earlier["status"], earlier["response"])
                [stored] = await store.publish(conn, prepared)
                await idempotency.finish(conn, key, 201, drafting.body(stored))
            return stored

        found = await settle(lambda: attempt(self._pool, once), unknown=False,
                             within=self._settle_within)
        if isinstance(found, Answer):
            return found  # an earlier request's (or attempt's) row is the relay's to finish
        [done] = await self._hand_off([draft], [found])
        return done

    async def _hand_off(self, drafts: Sequence[store.Draft],
                        stored: Sequence[store.Published]) -> list[_Committed]:
        """Route the events of new publishes; plan their pushes from who was online.

        Never raises: the drafts are stored, so whatever fails here is left to the relay.
        """
        plans: dict[int, list[OwedPush]] = {}
        try:
            new = [(d, s) for d, s in zip(drafts, stored, strict=True) if s.outbox_id]
            evs = [drafting.event(d, s) for d, s in new]
            online = await self.route(evs) if evs else None
            if online is not None:
                plans = {s.outbox_id: self.owed(e, online)
                         for (_, s), e in zip(new, evs, strict=True)}
        except Exception:  # a stored publish is never answered with an error
            log.exception("the hand-off of stored publishes failed; the outbox relay will retry")
        return [_Committed(s, plans.get(s.outbox_id)) for s in stored]

    def owed(self, event: dict[str, Any], online: Collection[str]) -> list[OwedPush]:
        """The jobs a routed publish owes: pushes (by presence) and e-mails."""
        return handoff.owed(event, online) + handoff.emails(event, self._uses_email)

    async def route(self, evs: Sequence[dict[str, Any]]) -> Collection[str] | None:
        """Deliver committed events here and put them on the bus for the other nodes, in
        order: the users online, or None if the bus failed (their outbox rows stay for the
        relay)."""
        node, local = self._here if self._here is not None else ("", None)
        held = local(evs) if local is not None else ()
        try:
            online = await self._publisher.publish(evs, skip=node)
        except BusUnavailable as exc:
            self.report(exc)
            return None
        online.update(held)
        return online

    async def _retire(self, items: list[tuple[int, list[OwedPush]]]) -> list[None]:
        try:
            await outbox.retire(self._pool, dict(items))
        except StoreUnavailable as exc:
            self.report(exc)
        except StoreError as exc:
            log.warning("outbox rows not retired, the relay will: %s", exc)
        except Exception:  # nobody awaits a retire: never answer one with an exception
            log.exception("outbox rows not retired, the relay will")
        return [None] * len(items)

    async def _live_only(self, req: PublishRequest, users: list[str]) -> Answer:
        now = datetime.now(UTC)
        content = drafting.content(req) | {"created_at": now, "updated_at": now}
        recipients = [events.Recipient(u, None, str(uuid.uuid4()), None, None) for u in users]
        event = events.notification_event(content, recipients, drafting.push(req))
        try:
            online = await self._publisher.publish([event])
        except BusUnavailable as exc:
            raise BusUnavailable("Redis is unavailable: a live-only notification cannot be"
                                 " sent, and nothing was stored to send later") from exc
        return Answer(202, {
            "created": 0, "delivered_live": len(online),
            "notifications": [{"recipient": r.user_id, "uid": r.uid, "seq": None}
                              for r in recipients],
        })

    async def _schedule(self, req: PublishRequest) -> Answer:
        """Store for later; a key makes the publish due later idempotent, so the (idempotent)
        insert can be retried after an unknown outcome: a second row publishes nothing new."""
        assert req.delay is not None
        due = datetime.now(UTC) + timedelta(seconds=req.delay)
        key = req.idempotency_key or (f"scheduled:{uuid.uuid4()}" if req.persist else None)
        request = msgspec.to_builtins(
            msgspec.structs.replace(req, delay=None, idempotency_key=key))
        sid = await settle(
            lambda: attempt(self._pool, lambda conn: scheduled.add(conn, request, due)),
            unknown=False, within=self._settle_within)
        return Answer(202, {"scheduled": True, "id": sid, "deliver_at": due})
