"""The node's hub: glue between the node's sockets, their sessions and the realtime service.

It holds no delivery rule: each socket's :class:`~tidings.core.session.Session`
decides what is sent, in which order, and what must be fetched first; the hub
feeds it events (joined, rows, live events, resyncs) and carries out its
actions (:meth:`Hub.carry_out`).

Contracts:

- Joining registers presence before the user's state is read, so a publish
  racing a connect reaches the session (held until joined) or the state.
- The node's inbox, the presence heartbeat, token expiry and pings are read
  and run by :mod:`.hub_loops`.
- Each event is encoded once per user (one frame shared by that user's sockets).
- Sockets are pinged, and closed at their token's expiry (4001), by two hub
  tasks rather than timers per socket.
- At shutdown, :meth:`Hub.close_sockets` closes every socket with 1012 (first,
  while the node still runs), then :meth:`Hub.stop` stops the hub's tasks,
  flushes the delivery log and removes presence.
- What it does is counted in the node's metrics once per event dispatched,
  fetch answered and slow socket closed (:mod:`tidings.services.metrics`).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import Coroutine, Sequence
from typing import Any

from ..config import Settings
from ..core import events, protocol
from ..core.errors import BusUnavailable, StoreError, StoreUnavailable
from ..core.session import Action, Fetch, Send
from ..services.metrics import Recorder
from ..services.realtime import Realtime
from . import hub_loops as loops
from .connection import Connection, spawn
from .delivery_log import BULK, DeliveryLog
from .rooms import Rooms
from .timing import Expiries, PingPhases

log = logging.getLogger(__name__)

DRAIN_WAIT = 10.0  # seconds a replaying socket may take to take half its queue


class Hub:
    def __init__(self, settings: Settings, realtime: Realtime, metrics: Recorder | None = None):
        self.settings = settings
        self.realtime = realtime
        self.metrics = metrics or Recorder()
        self.rooms: Rooms[Connection] = Rooms()
        self.expiries: Expiries[Connection] = Expiries()
        self.pings = PingPhases()
        self.delivery_log = DeliveryLog(realtime)
        self._tasks: list[asyncio.Task[None]] = []
        self._closed = False

    # -- lifecycle -------------------------------------------------------

    async def start(self) -> None:
        await self.realtime.start(self.rooms.__contains__)
        jobs: dict[str, Coroutine[Any, Any, None]] = {
            "inbox-reader": loops.read_inbox(self), "heartbeat": loops.heartbeat(self),
            "delivery-log": self.delivery_log.run(), "token-expiry": loops.sweep_expired(self),
            "pings": loops.ping_sockets(self)}
        self._tasks = [asyncio.create_task(job, name=name) for name, job in jobs.items()]

    def close_sockets(self) -> None:
        """Close every socket with 1012: clients reconnect to another node."""
        self._closed = True
        for conn in self.rooms.sockets():
            conn.close(protocol.CLOSE_RESTART, "server restarting")

    async def stop(self) -> None:
        """Stop the hub's tasks, flush the delivery log, leave presence (sockets closed)."""
        self.close_sockets()  # none are left unless the node stops before its shutdown
        for task in self._tasks:
            task.cancel()
        for task in self._tasks:
            with contextlib.suppress(asyncio.CancelledError):
                await task
        with contextlib.suppress(StoreUnavailable, StoreError):
            await self.delivery_log.flush()
        with contextlib.suppress(BusUnavailable):
            await self.realtime.stop()

    # -- sockets ---------------------------------------------------------

    def room_size(self, user_id: str) -> int:
        return self.rooms.size(user_id)

    async def join(self, conn: Connection, since: int | None) -> None:
        """Add a socket: presence, then the user's state, then counts, replay and live.

        Raises StoreUnavailable / StoreError / BusUnavailable (the caller closes it).
        """
        first = self.rooms.add(conn) == 1
        # the first socket of a user registers presence; later ones wait for that write too
        written = (self.realtime.changed(conn.user_id) if first
                   else self.realtime.pending(conn.user_id))
        if written is not None:
            await asyncio.shield(written)
        state = await self.realtime.joining(conn.user_id)
        self.carry_out(conn, conn.session.joined(state.last_seq, state.counts, since,
                                                 self.settings.replay_limit))

    def leave(self, conn: Connection) -> None:
        conn.session.disconnected()
        self.expiries.discard(conn)
        if conn.slow:
            self.metrics.slow_closed()
        if self.rooms.remove(conn) and not self._closed:
            self.realtime.changed(conn.user_id)  # written with others of the moment

    def expire_at(self, conn: Connection, at: float) -> None:
        """Close ``conn`` with 4001 once ``at`` (its token's expiry) has passed; a later
        call (a refresh) replaces the time."""
        self.expiries.set(conn, at)

    def expire_due(self, now: float) -> None:
        for conn in self.expiries.due(now):
            conn.close(protocol.CLOSE_BAD_TOKEN, "token expired")

    def ping_phase(self) -> None:
        """Ping the sockets of the next phase; one silent since its last ping is dropped."""
        for conn in self.pings.tick(self.rooms.sockets()):
            conn.ping()

    def acked(self, conn: Connection, seq: int) -> None:
        """A socket acknowledged ``seq``: logged with the next batch (only seqs it was sent)."""
        if 0 < seq <= conn.session.seq:
            self.delivery_log.acked(conn.user_id, seq)

    # -- sessions' events and actions ---------------------------------------

    def carry_out(self, conn: Connection, actions: list[Action]) -> None:
        for action in actions:
            if isinstance(action, Send):
                conn.send(action.frame)
            elif isinstance(action, Fetch):
                spawn(self._fetch(conn, action))
            else:
                conn.close(action.code, action.reason)

    async def _fetch(self, conn: Connection, fetch: Fetch) -> None:
        """Answer a session's fetch; rows go in slices that the socket's queue can take."""
        try:
            stored = await self.realtime.stored(conn.user_id, fetch.after, fetch.upto,
                                                fetch.most)
            rows = stored.rows or ()
            self.metrics.replayed(len(rows))
            step = max(1, conn.limit // 2)
            for i in range(0, len(rows), step):
                self.carry_out(conn, conn.session.rows(rows[i:i + step]))
                await conn.drain(conn.limit // 4, DRAIN_WAIT)
                if conn.closing:
                    return
            actions = conn.session.fetched(stored.upto, stored.counts)
        except StoreUnavailable as exc:
            self.realtime.report(exc)
            log.debug("fetch for a socket failed, closing it for a resume: %s", exc)
            actions = conn.session.fetch_failed()
        except StoreError as exc:
            log.warning("fetch for a socket failed, closing it for a resume: %s", exc)
            actions = conn.session.fetch_failed()
        self.carry_out(conn, actions)

    def resync(self) -> None:
        """Bring every socket up to date from PostgreSQL (after Redis lost events)."""
        for conn in self.rooms.sockets():
            self.carry_out(conn, conn.session.resync())

    def deliver_here(self, evs: Sequence[dict[str, Any]]) -> set[str]:
        """Dispatch to this node's sockets the parts of ``evs`` (committed, in order) that
        concern them, as if read from the inbox; returns the users held here."""
        held: set[str] = set()
        for event in evs:
            held.update(self.dispatch(event))
        return held

    def dispatch(self, event: dict[str, Any]) -> list[str]:
        """Feed ``event`` to the sessions of its users' sockets here (only theirs: no frame
        is built for a user not held here) and carry out their actions; returns those
        users."""
        rooms = self.rooms.by_user()
        logged = self.delivery_log.delivered
        reached: list[str] = []
        sockets = 0
        for delivery in events.deliveries(event, rooms):
            user_id = delivery.user_id
            room = rooms[user_id]
            reached.append(user_id)
            sockets += len(room)
            for conn in room:
                for action in conn.session.live(delivery):
                    if type(action) is Send:
                        conn.send(action.frame)
                    else:
                        self.carry_out(conn, [action])
            if delivery.seq is not None and delivery.uid is not None:
                logged(delivery.uid, user_id)
        if sockets:
            self.metrics.delivered(event, sockets)
            if sockets >= BULK:
                self.delivery_log.bulk(time.monotonic())
        return reached
