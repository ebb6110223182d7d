"""Publishing a notification: store it, route it, plan its pushes, answer.

:meth:`Publishing.publish` reads top to bottom: a delayed publish is stored for
later, a live-only one only routed; any other is drafted (:mod:`.drafting`:
each recipient's uid fixed now), stored (here; in chunks when large,
:mod:`.streaming`), handed off (:mod:`.handoff`: routed to the sockets, its
push and e-mail jobs planned from who is online) and answered; its outbox row
is retired with those jobs after the answer.

Contracts:

- 2xx if and only if stored. Each recipient's uid is chosen before the first
  attempt and the publish statement is idempotent on it, so after a lost
  connection (outcome unknown) the publish is retried until PostgreSQL answers
  (see :mod:`.attempts`): a retry stores nothing twice and allocates no second
  seq. Every error answer means "not stored"; ``StoreUnavailable`` (a 503) when
  PostgreSQL cannot be reached.
- Concurrent publishes (without an idempotency key) commit together in one
  statement, several statements in flight; publishes sharing a recipient
  commit and route in arrival order, one group after the other (see
  :mod:`.coalesce`). If that statement fails for any reason (PostgreSQL refuses a
  draft, the encoder refuses one, the connection is lost), its drafts are
  stored one by one, each failing or succeeding on its own.
- After the commit the events go to Redis (in commit order, one round trip)
  and the users found online decide the pushes owed; then the producer is
  answered. Retiring the outbox row and writing its push jobs happens after
  the answer, in the background: until then the row stays, and the relay only
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
- A publish to more than ``chunk_rows`` recipients is streamed
  (:mod:`.streaming`, its own contracts).
"""

from __future__ import annotations

import asyncio
import logging
import uuid
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from typing import Any

import msgspec

from ..bus.publisher import Publisher
from ..core.errors import BusUnavailable, StoreUnavailable, Unavailable
from ..core.requests import PublishRequest
from ..store import db, idempotency, scheduled
from ..store import publish as store
from . import drafting, handoff
from .attempts import OutcomeUnknown, attempt, settle
from .coalesce import Coalescer
from .drafting import Answer
from .handoff import Committed, HandOff, Here, UsesEmail
from .health import Health
from .streaming import CHUNK_ROWS, Streams

log = logging.getLogger(__name__)

#: Most notification rows one grouped statement stores (a larger publish goes alone).
GROUP_ROWS = 10_000
#: Publish statements in flight at once by default: two, so a group held up (a row lock,
#: a slow commit) does not hold up publishes to other users, and groups stay large
#: enough to share their round trips (five gave more statements, more CPU and no lower
#: latency at 1,000 publishes/s on a two-core machine).
COMMIT_RUNS = 2
_ALONE = "alone"  # the group failed: store this draft by itself
_UNKNOWN = "unknown"  # the group's outcome is unknown: settle this draft by itself


#: The push options a publish owes.
PlanPush = Callable[[PublishRequest], dict[str, Any]]


class Publishing:
    def __init__(self, pool: db.Pool, publisher: Publisher, health: Health | None = None, *,
                 settle_within: float = 30.0, here: tuple[str, Here] | None = None,
                 plan_push: PlanPush = drafting.push, uses_email: UsesEmail = handoff.no_email,
                 chunk_rows: int = CHUNK_ROWS, commit_runs: int | None = None):
        """``here``: this node's id and its local delivery (see the module); ``plan_push``:
        the push options a publish owes (a declared type's defaults under its own);
        ``uses_email``: whether a type's notifications owe e-mail jobs."""
        self._pool = pool
        self._plan_push = plan_push
        self._publisher = publisher
        self._health = health
        self._settle_within = settle_within
        self.handoff = HandOff(pool, publisher, self.report, here=here, uses_email=uses_email)
        self.streams = Streams(pool, self.handoff, settle_within=settle_within,
                               chunk_rows=chunk_rows)
        self._commits: Coalescer[store.Draft, Committed | str] = Coalescer(
            self._commit, weight=lambda d: len(d.users), max_weight=GROUP_ROWS,
            keys=lambda d: d.users, runs=commit_runs or min(COMMIT_RUNS, pool.get_max_size()))

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
            if len(users) > self.streams.chunk_rows:
                # shielded: a stream, once started, is finished even if the caller goes
                return await asyncio.shield(self.streams.publish(req, draft))
            # store, then route and plan the jobs owed: with the concurrent drafts of the
            # moment in one statement, else alone; with a key, once per key
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
        self.handoff.retire_later(done)
        return Answer(201, drafting.body([done.stored]))

    async def retired(self) -> None:
        """Returns once the outbox retires queued so far are done (or failed, left to
        the relay)."""
        await self.handoff.retired()

    async def _commit(self, drafts: list[store.Draft]) -> list[Committed | str]:
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
        return list(await self.handoff.hand_off(stored))

    async def _alone(self, draft: store.Draft, *, unknown: bool) -> Committed:
        prepared = store.prepare([draft])
        stored = await settle(
            lambda: attempt(self._pool, lambda conn: store.publish(conn, prepared)),
            unknown=unknown, within=self._settle_within)
        [done] = await self.handoff.hand_off(stored)
        return done

    async def _keyed(self, req: PublishRequest, draft: store.Draft) -> Answer | Committed:
        key = req.idempotency_key
        assert key is not None
        request_hash = drafting.request_hash(req)
        prepared = store.prepare([draft])

        async def once(conn: db.Connection) -> Answer | store.Published:
            async with db.transaction(conn):
                earlier = await idempotency.claim(conn, key, request_hash)
                if earlier is not None:
                    return drafting.earlier(earlier, request_hash)
                # the key was free: nothing of this request is stored (an attempt that
                # committed would have claimed it), so no uid is looked up
                [stored] = await store.publish(conn, prepared, new=True)
                await idempotency.finish(conn, key, 201, drafting.body([stored]))
            return stored

        found = await settle(lambda: attempt(self._pool, once), unknown=False,
                             within=self._settle_within)
        if isinstance(found, Answer):
            return found  # an earlier request's (or attempt's) row is the relay's to finish
        [done] = await self.handoff.hand_off([found])
        return done

    async def _live_only(self, req: PublishRequest, users: list[str]) -> Answer:
        uids = drafting.uids(uuid.uuid4(), len(users))
        unstored = store.Draft(users, uids, drafting.content(req), drafting.push(req))
        event = drafting.event(store.Published(unstored, [store.NOT_STORED] * len(users),
                                               datetime.now(UTC)))
        try:
            online = await self._publisher.publish([event])
        except BusUnavailable as exc:
            raise BusUnavailable("Redis is unavailable: a live-only notification cannot be"
                                 " sent, and nothing was stored to send later") from exc
        return Answer(202, {
            "created": 0, "delivered_live": len(online),
            "notifications": [{"recipient": u, "uid": uid, "seq": None}
                              for u, uid in zip(users, uids, strict=True)],
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

