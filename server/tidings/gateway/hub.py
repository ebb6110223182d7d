"""The node's hub: rooms of sockets per user, presence, replay, and dispatch of bus events.

Contracts:

- Joining registers presence before the replay query, and holds live
  deliveries until the replay is sent; the cursor then drops seqs already
  sent and fills any gap from PostgreSQL first. A publish racing a connect is
  thus neither lost nor doubled, and each socket sees seqs in order.
- The node reads only its own inbox stream, with XREAD BLOCK from the last id
  it handled, so a dropped Redis connection resumes where it stopped.
- Each event is encoded once per user (one frame shared by that user's sockets).
- Heartbeats keep the node live in presence and re-register its users if Redis
  lost them (a restart without persistence); then, as after a failed inbox
  read, every socket is brought up to date from PostgreSQL (:meth:`Hub.resync`),
  since events published meanwhile were routed nowhere.
- Sockets are pinged, and closed at their token's expiry, by two hub tasks
  rather than timers per socket: a silent peer is cut off one heartbeat after
  its unanswered ping, an expired token closes its socket with 4001 within
  ``EXPIRY_TICK`` seconds.
- :meth:`Hub.shutdown` closes every socket with 1012 and removes presence.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from typing import Any

import asyncpg
import orjson
import redis.asyncio as aioredis
from redis.exceptions import RedisError

from ..bus import keys, presence
from ..config import Settings
from ..core import events, protocol
from ..core.events import Delivery
from ..core.shapes import Counts, notification_dict
from ..store import inbox
from ..store import push as deliveries_log
from .connection import Connection, spawn

log = logging.getLogger(__name__)

READ_BLOCK_MS = 1000
READ_COUNT = 512
RECORD_EVERY = 0.5  # seconds between writes of the socket delivery log
EXPIRY_BUCKET = 10  # seconds of token expiries kept together
EXPIRY_TICK = 0.5  # seconds between sweeps of expired tokens
PING_PHASES = 8  # slices of the sockets pinged in turn over one heartbeat period
MAX_ACKS = 100_000  # acks kept between two writes; more are not logged
DRAIN_WAIT = 10.0  # seconds a replaying socket may take to take half its queue


def _frame(message: dict[str, Any]) -> bytes:
    return orjson.dumps(message)


class Hub:
    def __init__(self, settings: Settings, node_id: str, pool: asyncpg.Pool,
                 redis: aioredis.Redis, blocking: aioredis.Redis):
        self.settings = settings
        self.node_id = node_id
        self.pool = pool
        self.redis = redis
        self.blocking = blocking
        # a user's sockets here; a tuple, not a set: most users have one (a set is 216 B)
        self.rooms: dict[str, tuple[Connection, ...]] = {}
        # token expiries, bucketed by EXPIRY_BUCKET seconds, swept by one task
        self._expiring: dict[int, set[Connection]] = {}
        self.last_id = "0-0"
        self._delivered: list[tuple[str, str]] = []  # (uid, user id) to log as delivered
        self._acked: set[tuple[str, int]] = set()
        self._tasks: list[asyncio.Task[None]] = []
        self._closed = False
        self._presence = presence.Writer(redis, node_id, self.rooms.__contains__)

    # -- lifecycle -------------------------------------------------------

    async def start(self) -> None:
        await self.redis.delete(keys.node_inbox(self.node_id), keys.node_users(self.node_id))
        await presence.heartbeat(self.redis, self.node_id)
        self._tasks = [asyncio.create_task(self._read_inbox(), name="inbox-reader"),
                       asyncio.create_task(self._heartbeat(), name="heartbeat"),
                       asyncio.create_task(self._record(), name="delivery-log"),
                       asyncio.create_task(self._sweep_expired(), name="token-expiry"),
                       asyncio.create_task(self._ping_sockets(), name="pings")]

    async def shutdown(self) -> None:
        """Close every socket with 1012 (clients reconnect elsewhere), then leave presence."""
        self._closed = True
        conns = [c for room in self.rooms.values() for c in room]
        for conn in conns:
            conn.abort(protocol.CLOSE_RESTART, "server restarting")
        for task in self._tasks:
            task.cancel()
        for task in self._tasks:
            with contextlib.suppress(asyncio.CancelledError):
                await task
        await self._presence.close()
        with contextlib.suppress(OSError, asyncpg.PostgresError):
            await self._flush()
        with contextlib.suppress(RedisError, OSError):
            await presence.leave(self.redis, self.node_id)
            await self.redis.delete(keys.node_inbox(self.node_id))

    # -- rooms -----------------------------------------------------------

    def room_size(self, user_id: str) -> int:
        return len(self.rooms.get(user_id, ()))

    async def join(self, conn: Connection, since: int | None) -> None:
        """Add a socket: presence, counts, replay after ``since``, then live."""
        room = self.rooms[conn.user_id] = (*self.rooms.get(conn.user_id, ()), conn)
        # the first socket of a user registers presence; later ones wait for that write too
        written = (self._presence.changed(conn.user_id) if len(room) == 1
                   else self._presence.pending(conn.user_id))
        if written is not None:
            await asyncio.shield(written)
        state = await inbox.state(self.pool, conn.user_id)
        conn.cursor = protocol.Cursor(state.last_seq, state.counts.version)
        conn.send(_frame(protocol.counts_message(state.counts)))
        if since is not None and since != state.last_seq:
            if since > state.last_seq or state.last_seq - since > self.settings.replay_limit:
                conn.send(_frame(protocol.reset_message(state.last_seq)))
            else:
                conn.cursor.seq = since
                await self._send_stored(conn, since, state.last_seq, state.counts)
        self._go_live(conn)

    def leave(self, conn: Connection) -> None:
        self._unexpire(conn)
        room = self.rooms.get(conn.user_id)
        if room is None or conn not in room:
            return
        room = tuple(c for c in room if c is not conn)
        if room:
            self.rooms[conn.user_id] = room
        else:
            del self.rooms[conn.user_id]
            if not self._closed:
                self._presence.changed(conn.user_id)  # written with others of the moment

    # -- token expiry ----------------------------------------------------

    def expire_at(self, conn: Connection, at: float) -> None:
        """Close ``conn`` with 4001 once ``at`` (its token's expiry) has passed.

        Called again (a refresh), the new time replaces the old. One task sweeps
        every socket's expiry each ``EXPIRY_TICK`` seconds: an idle socket holds
        no timer of its own, and closes at most a tick late.
        """
        self._unexpire(conn)
        conn.expires_at = at
        self._expiring.setdefault(int(at // EXPIRY_BUCKET), set()).add(conn)

    def _unexpire(self, conn: Connection) -> None:
        key = int(conn.expires_at // EXPIRY_BUCKET)
        bucket = self._expiring.get(key)
        if bucket is not None:
            bucket.discard(conn)
            if not bucket:
                del self._expiring[key]

    def expire_due(self, now: float) -> None:
        """Close the sockets whose token expired by ``now``."""
        last = int(now // EXPIRY_BUCKET)
        for key in [k for k in self._expiring if k <= last]:
            bucket = self._expiring[key]
            for conn in [c for c in bucket if c.expires_at <= now]:
                bucket.discard(conn)
                conn.abort(protocol.CLOSE_BAD_TOKEN, "token expired")
            if not bucket:
                del self._expiring[key]

    # -- pings -----------------------------------------------------------

    def ping_phase(self, phase: int) -> None:
        """Ping the sockets of one phase (of ``PING_PHASES``), cutting off the silent ones.

        Every ``ws_heartbeat`` seconds each socket is pinged once, by one task:
        a socket that sent nothing (no pong, no message) since its previous ping
        is dropped as dead. Phases spread the pings over the period.
        """
        for room in tuple(self.rooms.values()):
            for conn in room:
                if (id(conn) >> 4) % PING_PHASES == phase:
                    conn.ping()

    async def _ping_sockets(self) -> None:
        phase = 0
        while True:
            await asyncio.sleep(self.settings.ws_heartbeat / PING_PHASES)
            self.ping_phase(phase)
            phase = (phase + 1) % PING_PHASES

    async def _sweep_expired(self) -> None:
        while True:
            await asyncio.sleep(EXPIRY_TICK)
            self.expire_due(time.time())

    # -- replay ----------------------------------------------------------

    async def _send_stored(self, conn: Connection, after: int, upto: int,
                           counts: Counts) -> None:
        """Send stored notifications with after < seq <= upto, in order."""
        rows = await inbox.between(self.pool, conn.user_id, after, upto)
        tail = counts.as_dict()
        room = conn.limit // 2
        for row in rows:
            if conn.queued >= room:  # a replay longer than the queue waits for the socket
                await conn.drain(conn.limit // 4, DRAIN_WAIT)
                if conn.closing:
                    return
            conn.send(_frame({"type": "notification", "notification": notification_dict(row),
                              **tail}))
        conn.cursor.sent(upto)

    def _go_live(self, conn: Connection) -> None:
        held, conn.held = conn.held, None
        for delivery in held or ():
            self._deliver(conn, delivery)

    async def _fill(self, conn: Connection, delivery: Delivery | None = None) -> None:
        """Send from PostgreSQL the seqs a socket lacks, then ``delivery`` if given.

        With a delivery, the gap is the seqs before it; without one (a resync after
        Redis lost data), everything stored after the cursor.
        """
        conn.held = []
        try:
            if delivery is None:
                state = await inbox.state(self.pool, conn.user_id)
                upto, counts = state.last_seq, state.counts
            else:
                assert delivery.seq is not None
                upto = delivery.seq - 1
                counts = delivery.counts or Counts(0, 0)
            gap = upto - conn.cursor.seq
            if gap > self.settings.replay_limit:
                conn.send(_frame(protocol.reset_message(upto)))
                conn.cursor.sent(upto)
            elif gap > 0:
                await self._send_stored(conn, conn.cursor.seq, upto, counts)
            if delivery is not None:
                conn.send(delivery.frame)
                conn.cursor.sent(delivery.seq, delivery.version)
        except (OSError, asyncpg.PostgresError) as exc:
            log.warning("gap fill failed, closing the socket for a resume: %s", exc)
            conn.abort(protocol.CLOSE_RESTART, "resume needed")
            return
        self._go_live(conn)

    def resync(self) -> None:
        """Bring every live socket up to date from PostgreSQL (after Redis lost events)."""
        for room in self.rooms.values():
            for conn in room:
                if conn.live and not conn.closing:
                    spawn(self._fill(conn))

    # -- dispatch --------------------------------------------------------

    def dispatch(self, event: dict[str, Any]) -> None:
        for delivery in events.deliveries(event):
            room = self.rooms.get(delivery.user_id)
            if not room:
                continue
            for conn in room:
                self._deliver(conn, delivery)
            if delivery.seq is not None and delivery.uid is not None:
                self._delivered.append((delivery.uid, delivery.user_id))

    def _deliver(self, conn: Connection, delivery: Delivery) -> None:
        if conn.closing:
            return
        if not conn.live:
            conn.hold(delivery)
            return
        if delivery.kind == events.COUNTS:
            if conn.cursor.counts(delivery.version):
                conn.send(delivery.frame)
            return
        verdict = conn.cursor.notification(delivery.seq)
        if verdict is protocol.Verdict.SEND:
            conn.send(delivery.frame)
            conn.cursor.sent(delivery.seq, delivery.version)
        elif verdict is protocol.Verdict.FILL:
            spawn(self._fill(conn, delivery))

    # -- background ------------------------------------------------------

    async def _read_inbox(self) -> None:
        stream = keys.node_inbox(self.node_id)
        backoff = 0.1
        lost = False
        while True:
            try:
                answer = await self.blocking.xread({stream: self.last_id}, count=READ_COUNT,
                                                   block=READ_BLOCK_MS)
                backoff = 0.1
            except (RedisError, OSError) as exc:
                log.warning("inbox read failed (%s); retrying from %s", exc, self.last_id)
                await asyncio.sleep(backoff)
                backoff = min(backoff * 2, 2.0)
                lost = True
                continue
            if lost:  # the stream may have lost entries (Redis restarted): catch up
                lost = False
                self.resync()
            for _stream, entries in answer or ():
                for entry_id, fields in entries:
                    self.last_id = entry_id.decode() if isinstance(entry_id, bytes) else entry_id
                    try:
                        event = events.decode(fields[b"e"])
                    except (KeyError, ValueError):
                        log.warning("dropped a malformed bus entry %s", self.last_id)
                        continue
                    self.dispatch(event)

    async def _record(self) -> None:
        """Write which stored notifications reached a socket here, in batches."""
        while True:
            await asyncio.sleep(RECORD_EVERY)
            try:
                await self._flush()
            except (OSError, asyncpg.PostgresError) as exc:
                log.warning("socket delivery log not written: %s", exc)

    def acked(self, conn: Connection, seq: int) -> None:
        """A socket acknowledged ``seq``: logged with the next batch (only seqs it was sent)."""
        if 0 < seq <= conn.cursor.seq and len(self._acked) < MAX_ACKS:
            self._acked.add((conn.user_id, seq))

    async def _flush(self) -> None:
        batch, self._delivered = self._delivered, []
        acks, self._acked = self._acked, set()
        async with self.pool.acquire() as conn:
            await deliveries_log.record_sockets(conn, batch)
            if acks:
                users, seqs = zip(*acks, strict=True)
                await deliveries_log.record_acks(conn, list(users), list(seqs))

    async def _heartbeat(self) -> None:
        beats = 0
        while True:
            try:
                await presence.heartbeat(self.redis, self.node_id, time.time())
                if self.rooms and not await self.redis.exists(keys.node_users(self.node_id)):
                    log.warning("presence was lost (Redis restarted?); registering %d users",
                                len(self.rooms))
                    await self.redis.sadd(keys.node_users(self.node_id), *self.rooms)
                    self.resync()  # what was published before presence came back
                beats += 1
                if beats % 5 == 0:
                    for dead in await presence.reap(self.redis):
                        log.info("reaped presence of silent node %s", dead)
            except (RedisError, OSError) as exc:
                log.warning("heartbeat failed: %s", exc)
            await asyncio.sleep(presence.HEARTBEAT)
