"""What a node's gateway needs from PostgreSQL and Redis, and nothing else.

The gateway reaches the store and the bus only through :class:`Realtime`:
a user's state when a socket joins, the stored rows between two seqs, the
socket delivery log, this node's presence and its inbox stream. Every
method raises only :class:`~tidings.core.errors.StoreUnavailable` /
:class:`~tidings.core.errors.StoreError` (PostgreSQL) or
:class:`~tidings.core.errors.BusUnavailable` (Redis). Outages seen by the
gateway go to :meth:`Realtime.report` (the node's health, which says each
outage once); retries during one are DEBUG lines, never a line each.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import AsyncIterator, Callable, Collection, Sequence
from dataclasses import dataclass
from typing import Any

from ..bus import node_presence, presence
from ..bus.connect import Redis
from ..bus.errors import translated as bus_errors
from ..bus.node_inbox import NodeInbox
from ..core import events
from ..core.errors import BusUnavailable, Unavailable
from ..core.replies import Counts
from ..store import db, delivery_log, inbox
from ..store.errors import translated as store_errors
from .coalesce import Coalescer

log = logging.getLogger(__name__)

READ_BLOCK_MS = 1000
#: Most joining users whose state one statement reads.
JOIN_BATCH = 500
HEARTBEAT = presence.HEARTBEAT  # seconds between calls of Realtime.beat
REAP_EVERY = 5  # heartbeats between looks for silent nodes


@dataclass(frozen=True, slots=True)
class Stored:
    """Stored notifications after a seq: ``rows`` (oldest first) up to ``upto``.

    ``rows`` is None when more than the asked-for most lie in the range (not read).
    """

    upto: int
    counts: Counts | None
    rows: Sequence[Any] | None


class Realtime:
    def __init__(self, pool: db.Pool, redis: Redis, blocking: Redis, node_id: str,
                 report: Callable[[Unavailable], None] | None = None):
        """``report``: told of every outage seen (the node's ``Health.report``)."""
        self.node_id = node_id
        self._report = report
        self._pool = pool
        self._redis = redis
        self._inbox = NodeInbox(blocking, node_id)
        self._writer: presence.Writer | None = None
        self._beats = 0
        self._joins: Coalescer[str, inbox.State] = Coalescer(self._states, max_items=JOIN_BATCH)

    def report(self, exc: Unavailable) -> None:
        """PostgreSQL or Redis was unavailable to the gateway (said once per outage)."""
        if self._report is not None:
            self._report(exc)
        else:
            log.warning("%s", exc.message)

    # -- presence --------------------------------------------------------

    async def start(self, here: Callable[[str], bool]) -> None:
        """Take this node's place in presence; ``here(user)``: does the node hold a socket?"""
        self._writer = presence.Writer(self._redis, self.node_id, here)
        await node_presence.start(self._redis, self.node_id)

    def changed(self, user_id: str) -> asyncio.Future[None]:
        """Write the user's presence here soon (joins and leaves of a moment coalesce)."""
        assert self._writer is not None, "start() first"
        return self._writer.changed(user_id)

    def pending(self, user_id: str) -> asyncio.Future[None] | None:
        """The presence write covering ``user_id`` that is waiting or running, if any."""
        assert self._writer is not None, "start() first"
        return self._writer.pending(user_id)

    async def beat(self, users: Collection[str]) -> bool:
        """Heartbeat; True if Redis had lost this node's users (they are registered again)."""
        with bus_errors():
            await presence.heartbeat(self._redis, self.node_id)
            lost = bool(users) and not await node_presence.registered(self._redis, self.node_id)
            if lost:
                log.info("presence was lost (Redis restarted?); registering %d users",
                         len(users))
                await node_presence.register(self._redis, self.node_id, list(users))
            self._beats += 1
            if self._beats % REAP_EVERY == 0:
                for dead in await presence.reap(self._redis):
                    log.info("reaped presence of silent node %s", dead)
        return lost

    async def stop(self) -> None:
        """Leave presence and drop the inbox stream (graceful shutdown)."""
        if self._writer is not None:
            await self._writer.close()
        await node_presence.stop(self._redis, self.node_id)

    # -- the node's inbox ------------------------------------------------

    async def events(self) -> AsyncIterator[list[dict[str, Any]] | None]:
        """Batches of live events for this node, in stream order, forever.

        ``None`` means "events may have been lost": it comes once reading works
        again after a Redis failure (the stream may have lost entries).
        """
        backoff = 0.1
        lost = False
        while True:
            try:
                payloads = await self._inbox.read(READ_BLOCK_MS)
            except BusUnavailable as exc:
                self.report(exc)
                log.debug("inbox read failed (%s); retrying from %s", exc, self._inbox.last_id)
                await asyncio.sleep(backoff)
                backoff = min(backoff * 2, 2.0)
                lost = True
                continue
            backoff = 0.1
            if lost:
                lost = False
                yield None
            batch = []
            for payload in payloads:
                try:
                    batch.append(events.decode(payload))
                except ValueError:
                    log.warning("dropped a malformed bus entry before %s", self._inbox.last_id)
            if batch:
                yield batch

    # -- stored notifications ---------------------------------------------

    async def joining(self, user_id: str) -> inbox.State:
        """The user's newest seq and counts, read together (for a socket that joins).

        The joins of a moment share one statement: a burst of connects costs a
        round trip per batch, not per socket.
        """
        return await self._joins.submit(user_id)

    async def _states(self, user_ids: list[str]) -> list[inbox.State]:
        with store_errors():
            found = await inbox.states(self._pool, user_ids)
        return [found[u] for u in user_ids]

    async def stored(self, user_id: str, after: int, upto: int | None, most: int) -> Stored:
        """Stored notifications with ``after`` < seq <= ``upto`` (None: the newest, with
        the counts read with it); the rows are not read if more than ``most`` seqs lie
        in the range."""
        counts = None
        with store_errors():
            if upto is None:
                state = await inbox.state(self._pool, user_id)
                upto, counts = state.last_seq, state.counts
            if upto - after > most:
                return Stored(upto, counts, None)
            rows = await inbox.between(self._pool, user_id, after, upto) if upto > after else []
        return Stored(upto, counts, rows)

    async def record(self, delivered: Sequence[tuple[str, str]],
                     acks: Collection[tuple[str, int]]) -> None:
        """Log (uid, user) as delivered to a socket here, and (user, seq) as acknowledged."""
        if not delivered and not acks:
            return
        with store_errors():
            async with self._pool.acquire() as conn:
                await delivery_log.record_sockets(conn, delivered)
                if acks:
                    users, seqs = zip(*acks, strict=True)
                    await delivery_log.record_acks(conn, list(users), list(seqs))
