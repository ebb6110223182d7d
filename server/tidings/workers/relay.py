"""The relay: finishes the hand-off of committed publishes, and publishes due scheduled ones.

Contracts:

- Outbox rows older than ``grace`` seconds (the publishing request normally
  retires its row within milliseconds) are claimed with ``SKIP LOCKED``, so
  with many nodes each row is handled by one. Their events are routed, then, in
  the claiming transaction, the rows are deleted and the jobs owed (pushes
  decided with the presence the routing found, and e-mails:
  :meth:`~tidings.services.handoff.HandOff.owed`) written. A failure leaves them
  for the next round: at-least-once onto the bus (the gateway drops seqs a
  socket already has), and the row and its push jobs are never both absent.
- While Redis is down presence is unknown: a row older than ``push_bound``
  seconds has its jobs handed off as if every recipient were offline, and is
  kept (owing no job any more) for its live delivery once Redis is back.
- A streamed publish whose request stopped midway is completed once due
  (:meth:`~tidings.services.streaming.Streams.complete_due`); the
  outbox rows of what that stores are then relayed like any others.
- A due scheduled publish is published with its idempotency key (set when it
  was scheduled, or derived from its id), then deleted: a crash in between
  cannot publish it twice. One refused for good (a 4xx, or by PostgreSQL) is
  logged and deleted; an outage leaves the round for the next.
- A PostgreSQL or Redis outage is reported to the node's health (one line per
  outage), not logged every round.
"""

from __future__ import annotations

import asyncio
import logging

import msgspec

from ..core.errors import StoreError, TidingsError, Unavailable
from ..core.requests import PublishRequest, check_publish
from ..services import drafting
from ..services.publishing import Publishing
from ..store import db, outbox, scheduled
from ..store import publish as store

log = logging.getLogger(__name__)


class Relay:
    def __init__(self, pool: db.Pool, publishing: Publishing, *, grace: float = 2.0,
                 interval: float = 1.0, batch: int = 100, push_bound: float = 10.0):
        self._pool = pool
        self._publishing = publishing
        self._grace = grace
        self._interval = interval
        self._batch = batch
        self._push_bound = push_bound

    async def run(self, *, burst: bool = False) -> int:
        """Relay until cancelled; with ``burst``, until nothing is due. Returns rows handled."""
        handled = 0
        while True:
            try:
                n = (await self._publishing.streams.complete_due() + await self.outbox_round()
                     + await self.schedule_round())
            except Unavailable as exc:
                if burst:
                    raise
                self._publishing.report(exc)
                n = 0
            except Exception:  # the relay outlives a bad round; the rows stay for the next
                if burst:
                    raise
                log.exception("relay round failed")
                n = 0
            handled += n
            if burst and n == 0:
                return handled
            if n == 0:
                await asyncio.sleep(self._interval)

    async def outbox_round(self) -> int:
        """Hand off one batch of stale rows; how many were retired or had pushes handed off."""
        async with db.connection(self._pool) as conn, db.transaction(conn):
            claimed = await outbox.claim_stale(conn, self._grace, self._batch)
            if not claimed:
                return 0
            found: dict[int, store.Published] = {}
            for row in claimed:
                stored = await store.read_back(conn, row["notification_ids"],
                                               outbox.push_of(row["push"]))
                if stored is not None:
                    found[row["id"]] = stored
            handoff = self._publishing.handoff
            evs = [drafting.event(stored) for stored in found.values()]
            online = await handoff.route(evs) if evs else set()
            if online is None:  # Redis down: hand off the pushes of rows waiting too long
                late = {r["id"]: handoff.owed(found[r["id"]], ()) for r in claimed
                        if r["age"] >= self._push_bound and r["id"] in found
                        and not outbox.handed_off(r["push"])}
                if late:
                    await outbox.pushes_handed_off(conn, late)
                    log.info("handed off the pushes of %d outbox row(s) without presence",
                             len(late))
                return len(late)
            owed = {r["id"]: handoff.owed(found[r["id"]], online) if r["id"] in found else []
                    for r in claimed}
            retired = await outbox.retire(conn, owed)
        log.info("relayed %d outbox row(s)", retired)
        return len(claimed)

    async def schedule_round(self) -> int:
        async with db.connection(self._pool) as conn, db.transaction(conn):
            due = await scheduled.claim_due(conn, self._batch)
            for row in due:
                req = msgspec.convert(row["request"], PublishRequest)
                if req.persist and req.idempotency_key is None:
                    req = msgspec.structs.replace(req, idempotency_key=f"scheduled:{row['id']}")
                try:
                    await self._publishing.publish(req, check_publish(req))
                except Unavailable:
                    raise  # the whole round waits for the next one
                except (TidingsError, StoreError) as exc:  # refused for good: drop it, say so
                    log.warning("scheduled publish %d dropped: %s", row["id"], exc)
            if due:
                await scheduled.delete(conn, [r["id"] for r in due])
        return len(due)
