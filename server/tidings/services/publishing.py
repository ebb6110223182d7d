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

Streamed publishes (more than ``chunk_rows`` recipients, :meth:`Publishing._stream`):

- The recipients are stored in chunks (a first one of a tenth of
  ``chunk_rows``, then ``chunk_rows`` each), each chunk in its own
  transaction, in order, and each chunk is routed (delivered here, put on the
  bus) as soon as it commits, while the next chunk is being stored: the first
  sockets hear within a small insert's time, not the whole publish's. No row
  is routed before it is committed.
- The first chunk's transaction also writes the publish's full recipient list
  and uid base (:mod:`tidings.store.streamed`; with an idempotency key, the
  key is claimed there too). So the publish is never left half done: once
  any chunk is stored, whatever stops the request (PostgreSQL refusing or
  unreachable past ``settle_within``, the node dying), the relay stores the
  rest from that row once it is due (``settle_within`` + ``STREAM_GRACE``
  seconds after the first chunk), idempotently, and writes the key's answer.
- Answers: 201 once every chunk is stored (the same body as any publish). The
  first chunk failing is answered as any publish fails (nothing is stored). A
  later chunk failing is answered **202**: accepted, not all stored yet; the
  body lists every recipient's uid, with the seq of those stored (null for the
  ``pending`` rest, which the relay stores). Never an error for a publish
  partly stored. A request repeating the key of a streamed publish still in
  progress gets 409 ``publish_in_progress`` (nothing stored by it); once the
  publish is complete, its 201.
"""

from __future__ import annotations

import asyncio
import hashlib
import logging
import uuid
from collections.abc import Callable, Collection, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

import msgspec

from ..bus.publisher import Publisher
from ..core import errors, events
from ..core.errors import BusUnavailable, StoreError, StoreUnavailable, Unavailable
from ..core.schemas import PublishRequest
from ..store import db, idempotency, outbox, scheduled, streamed
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
#: Recipients per chunk of a streamed publish (a publish to more is streamed).
CHUNK_ROWS = 1000
#: Seconds past ``settle_within`` before the relay completes a streamed publish: the
#: request that streams it is done by then.
STREAM_GRACE = 30.0
#: Seconds before the relay tries again a streamed publish PostgreSQL refused to complete.
STREAM_RETRY = 60.0
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
                 plan_push: PlanPush = drafting.push, uses_email: UsesEmail = handoff.no_email,
                 chunk_rows: int = CHUNK_ROWS):
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
        self._chunk_rows = chunk_rows
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
            if len(users) > self._chunk_rows:
                # shielded: a stream, once started, is finished even if the caller goes
                return await asyncio.shield(self._stream(req, draft))
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
        self._retire_later(done)
        return Answer(201, drafting.body([done.stored]))

    def _retire_later(self, done: _Committed) -> None:
        if done.owed is not None and done.stored.outbox_id:
            self._retires.post((done.stored.outbox_id, done.owed))

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
        return list(await self._hand_off(stored))

    async def _alone(self, draft: store.Draft, *, unknown: bool) -> _Committed:
        prepared = store.prepare([draft])
        stored = await settle(
            lambda: attempt(self._pool, lambda conn: store.publish(conn, prepared)),
            unknown=unknown, within=self._settle_within)
        [done] = await self._hand_off(stored)
        return done

    async def _keyed(self, req: PublishRequest, draft: store.Draft) -> Answer | _Committed:
        key = req.idempotency_key
        assert key is not None
        request_hash = _request_hash(req)
        prepared = store.prepare([draft])

        async def once(conn: db.Connection) -> Answer | store.Published:
            async with db.transaction(conn):
                earlier = await idempotency.claim(conn, key, request_hash)
                if earlier is not None:
                    return _earlier(earlier, request_hash)
                [stored] = await store.publish(conn, prepared)
                await idempotency.finish(conn, key, 201, drafting.body([stored]))
            return stored

        found = await settle(lambda: attempt(self._pool, once), unknown=False,
                             within=self._settle_within)
        if isinstance(found, Answer):
            return found  # an earlier request's (or attempt's) row is the relay's to finish
        [done] = await self._hand_off([found])
        return done

    async def _stream(self, req: PublishRequest, draft: store.Draft) -> Answer:
        """Store and route ``draft`` chunk by chunk (see the module's contract)."""
        key = req.idempotency_key
        request_hash = _request_hash(req) if key is not None else ""
        n = len(draft.users)
        bounds = _chunks(n, self._chunk_rows)
        parts = [draft.part(start, stop) for start, stop in bounds]
        first = store.prepare([parts[0]])
        within = self._settle_within

        async def begin(conn: db.Connection) -> Answer | tuple[int, store.Published]:
            async with db.transaction(conn):
                earlier = None if key is None else await idempotency.claim(
                    conn, key, request_hash)
                # An earlier request's key is answered, unless it is this request's own
                # attempt whose outcome was unknown (same uids): then carry on.
                if earlier is not None and (earlier["status"] is not None
                                            or await streamed.base_of(conn, key) != draft.uids[0]):
                    return _earlier(earlier, request_hash)
                sid = await streamed.begin(conn, draft.uids[0], draft.users, draft.content,
                                           draft.push, key, within + STREAM_GRACE)
                [stored] = await store.publish(conn, first)
            return sid, stored

        async def chunk(part: store.Draft) -> store.Published:
            prepared = store.prepare([part])
            [stored] = await settle(  # some is stored: retry whatever the failure, a while
                lambda: attempt(self._pool, lambda conn: store.publish(conn, prepared)),
                unknown=True, within=within)
            return stored

        began = await settle(lambda: attempt(self._pool, begin), unknown=False, within=within)
        if isinstance(began, Answer):
            return began
        sid, stored = began
        done: list[store.Published] = []
        for i in range(len(parts)):
            following = None
            if i + 1 < len(parts):  # the next chunk is stored while this one is routed
                following = asyncio.ensure_future(chunk(parts[i + 1]))
                await asyncio.sleep(0)  # it sends its statement before routing starts
            self._retire_later((await self._hand_off([stored]))[0])
            done.append(stored)
            if following is None:
                break
            try:
                stored = await following
            except (StoreError, StoreUnavailable) as exc:
                log.warning("a streamed publish stopped after %d of %d recipients (%s); the"
                            " relay will store the rest", sum(len(p.rows) for p in done), n,
                            exc)
                return Answer(202, drafting.body(done, draft.part(bounds[i + 1][0], n)))
        answer = drafting.body(done)
        try:
            await streamed.finish(self._pool, sid, answer if key is not None else None)
        except (StoreError, StoreUnavailable) as exc:  # stored: 201; the relay tidies up
            log.info("a streamed publish is stored, its record is left to the relay (%s)", exc)
        return Answer(201, answer)

    async def complete_streamed(self, limit: int = 1) -> int:
        """Store the rest of streamed publishes past due (their request stopped midway),
        write their keys' answers, delete their records: how many were completed.

        Each record stays locked (claimed) until it is completed; its chunks are stored
        as the request stores them, each in its own statement (idempotent: what is
        stored is read back), so no transaction holds users across chunks. The outbox
        rows of what this stores are routed by the relay. A publish PostgreSQL refuses
        to complete is logged and tried again ``STREAM_RETRY`` seconds later.
        """
        done = 0
        async with db.connection(self._pool) as conn, db.transaction(conn):
            for row in await streamed.claim_due(conn, limit):
                draft = store.Draft(row.users, drafting.uids(row.uid_base, len(row.users)),
                                    row.content, row.push)
                try:
                    parts = [(await store.publish(self._pool, store.prepare([draft.part(*b)])))[0]
                             for b in _chunks(len(row.users), self._chunk_rows)]
                except StoreError as exc:
                    log.warning("a streamed publish could not be completed (%s); trying again"
                                " in %g s", exc, STREAM_RETRY)
                    await streamed.postpone(conn, row.id, STREAM_RETRY)
                    continue
                await streamed.finish(
                    conn, row.id, drafting.body(parts) if row.idempotency_key else None)
                done += 1
        if done:
            log.info("completed %d streamed publish(es)", done)
        return done

    async def _hand_off(self, stored: Sequence[store.Published]) -> list[_Committed]:
        """Route the events of new publishes; plan their pushes from who was online.

        Never raises: the drafts are stored, so whatever fails here is left to the relay.
        """
        plans: dict[int, list[OwedPush]] = {}
        try:
            new = [s for s in stored if s.outbox_id]
            evs = [drafting.event(s) for s in new]
            online = await self.route(evs) if evs else None
            if online is not None:
                plans = {s.outbox_id: self.owed(e, online)
                         for s, e in zip(new, evs, strict=True)}
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
        uids = drafting.uids(uuid.uuid4(), len(users))
        event = events.rows_event(content, [[u, None, uid, None, None, None, None]
                                            for u, uid in zip(users, uids, strict=True)],
                                  drafting.push(req))
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


def _chunks(n: int, size: int) -> list[tuple[int, int]]:
    """The chunks of a streamed publish to ``n`` recipients: a first one of a tenth of
    ``size`` (the first sockets hear after a small insert), then ``size`` each."""
    first = min(n, max(1, size // 10))
    return [(0, first), *((i, min(i + size, n)) for i in range(first, n, size))]


def _request_hash(req: PublishRequest) -> str:
    return hashlib.sha256(msgspec.json.encode(req)).hexdigest()


def _earlier(earlier: db.Row, request_hash: str) -> Answer:
    """The answer to a request repeating an idempotency key ``earlier`` requests hold."""
    if earlier["request_hash"] != request_hash:
        raise errors.IDEMPOTENCY_KEY_REUSED.error()
    if earlier["status"] is None:
        raise errors.PUBLISH_IN_PROGRESS.error(
            "a publish with this idempotency_key is still being stored; ask again for its answer")
    return Answer(earlier["status"], earlier["response"])
