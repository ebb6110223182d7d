"""Streamed publishes: a publish to more than ``chunk_rows`` recipients, stored and routed
chunk by chunk, and completed by the relay if its request stops midway.

Contracts:

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
import logging

from ..core.errors import StoreError, StoreUnavailable
from ..core.requests import PublishRequest
from ..store import db, idempotency, streamed
from ..store import publish as store
from . import drafting
from .attempts import attempt, settle
from .drafting import Answer
from .handoff import HandOff

log = logging.getLogger(__name__)

#: Recipients per chunk of a streamed publish (a publish to more is streamed).
CHUNK_ROWS = 1000
#: Seconds past ``settle_within`` before the relay completes a streamed publish: the
#: request that streams it is done by then.
STREAM_GRACE = 30.0
#: Seconds before the relay tries again a streamed publish PostgreSQL refused to complete.
STREAM_RETRY = 60.0


class Streams:
    def __init__(self, pool: db.Pool, handoff: HandOff, *, settle_within: float,
                 chunk_rows: int = CHUNK_ROWS):
        self._pool = pool
        self._handoff = handoff
        self._settle_within = settle_within
        self.chunk_rows = chunk_rows

    async def publish(self, req: PublishRequest, draft: store.Draft) -> Answer:
        """Store and route ``draft`` chunk by chunk (see the module's contract)."""
        key = req.idempotency_key
        request_hash = drafting.request_hash(req) if key is not None else ""
        n = len(draft.users)
        bounds = _chunks(n, self.chunk_rows)
        parts = [draft.part(start, stop) for start, stop in bounds]
        first = store.prepare([parts[0]])
        within = self._settle_within

        tries = 0

        async def begin(conn: db.Connection) -> Answer | tuple[int, store.Published]:
            nonlocal tries
            tries += 1
            async with db.transaction(conn):
                earlier = None if key is None else await idempotency.claim(
                    conn, key, request_hash)
                # An earlier request's key is answered, unless it is this request's own
                # attempt whose outcome was unknown (same uids): then carry on.
                if earlier is not None and (earlier["status"] is not None
                                            or await streamed.base_of(conn, key) != draft.uids[0]):
                    return drafting.earlier(earlier, request_hash)
                sid = await streamed.begin(conn, draft.uids[0], draft.users, draft.content,
                                           draft.push, key, within + STREAM_GRACE)
                # a first try stored nothing before: no uid is looked up (a later try
                # reads back what an attempt whose outcome was unknown stored)
                [stored] = await store.publish(conn, first, new=tries == 1)
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
            self._handoff.retire_later((await self._handoff.hand_off([stored]))[0])
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

    async def complete_due(self, limit: int = 1) -> int:
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
                             for b in _chunks(len(row.users), self.chunk_rows)]
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


def _chunks(n: int, size: int) -> list[tuple[int, int]]:
    """The chunks of a streamed publish to ``n`` recipients: a first one of a tenth of
    ``size`` (the first sockets hear after a small insert), then ``size`` each."""
    first = min(n, max(1, size // 10))
    return [(0, first), *((i, min(i + size, n)) for i in range(first, n, size))]
