"""The relay: publishes what was committed but never reached Redis, and due scheduled publishes.

Contracts:

- Outbox rows older than ``grace`` seconds (the publishing request normally
  deletes its row within milliseconds) are claimed with ``SKIP LOCKED``, so
  with many nodes each row is handled by one; the row is deleted in the
  claiming transaction only after its event is on the bus. A failure leaves
  it for the next round: at-least-once onto the bus, and the gateway drops
  seqs a socket already has.
- A due scheduled publish is published with an idempotency key derived from
  its id, then deleted: a crash in between cannot publish it twice.
"""

from __future__ import annotations

import asyncio
import logging
from typing import Any

import asyncpg
import msgspec

from ..core import events
from ..core.schemas import PublishRequest, check_publish
from ..core.shapes import CONTENT_FIELDS, Counts
from ..services.publishing import Publishing
from ..store import inbox, outbox, scheduled

log = logging.getLogger(__name__)


def rebuild(rows: list[asyncpg.Record], push: dict[str, Any] | None) -> dict[str, Any]:
    """The notification event of stored rows (one publish), with current counts."""
    first = rows[0]
    content = {f: first[f] for f in CONTENT_FIELDS}
    content.update(created_at=first["created_at"], updated_at=first["created_at"])
    recipients = [
        events.Recipient(r["user_id"], r["id"], str(r["uid"]), r["seq"],
                         Counts(r["total_count"], r["unread_count"], r["version"]))
        for r in rows if r["status"] == "ACTIVE"
    ]
    return events.notification_event(content, recipients, push)


class Relay:
    def __init__(self, pool: asyncpg.Pool, publishing: Publishing, *, grace: float = 2.0,
                 interval: float = 1.0, batch: int = 100):
        self._pool = pool
        self._publishing = publishing
        self._grace = grace
        self._interval = interval
        self._batch = batch

    async def run(self, *, burst: bool = False) -> int:
        """Relay until cancelled; with ``burst``, until nothing is due. Returns rows handled."""
        handled = 0
        while True:
            try:
                n = await self.outbox_round() + await self.schedule_round()
            except (OSError, asyncpg.PostgresError) as exc:
                if burst:
                    raise
                log.warning("relay round failed: %s", exc)
                n = 0
            handled += n
            if burst and n == 0:
                return handled
            if n == 0:
                await asyncio.sleep(self._interval)

    async def outbox_round(self) -> int:
        async with self._pool.acquire() as conn, conn.transaction():
            claimed = await outbox.claim_stale(conn, self._grace, self._batch)
            evs = []
            for row in claimed:
                stored = await inbox.by_ids(conn, row["notification_ids"])
                if stored:
                    evs.append(rebuild(stored, row["push"]))
            done = [row["id"] for row in claimed]
            if evs and not await self._publishing.hand_off(evs):
                done = []  # Redis still down: keep the rows for the next round
            if done:
                await outbox.delete(conn, done)
        if done:
            log.info("relayed %d outbox event(s)", len(done))
        return len(done)

    async def schedule_round(self) -> int:
        async with self._pool.acquire() as conn, conn.transaction():
            due = await scheduled.claim_due(conn, self._batch)
            for row in due:
                req = msgspec.convert(row["request"], PublishRequest)
                if req.persist and req.idempotency_key is None:
                    req = msgspec.structs.replace(req, idempotency_key=f"scheduled:{row['id']}")
                await self._publishing.publish(req, check_publish(req))
            if due:
                await scheduled.delete(conn, [r["id"] for r in due])
        return len(due)
