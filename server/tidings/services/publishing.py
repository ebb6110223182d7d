"""Publishing a notification: store it durably, then route it live and hand off pushes.

Contracts:

- A stored notification is committed (with its outbox row) before the caller
  is answered; the live event and push jobs follow the commit. If Redis fails
  then, the outbox row stays and the relay publishes it later: nothing
  acknowledged is lost, and a socket may see an event twice only across such a
  retry (the gateway drops seqs it already sent). Concurrent publishes delete
  their outbox rows in one statement, before their callers are answered.
- With an ``idempotency_key``, the same key and body return the first answer
  and store nothing new; the same key with another body is a 409.
- ``persist: false`` stores nothing: no seq, no counts, no replay.
"""

from __future__ import annotations

import asyncio
import hashlib
import logging
import uuid
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

import asyncpg
import msgspec
from redis.exceptions import RedisError

from ..bus.publisher import Publisher
from ..core import events
from ..core.errors import Conflict, Unavailable
from ..core.schemas import PublishRequest
from ..core.shapes import CONTENT_FIELDS
from ..store import idempotency, inbox, outbox, scheduled

log = logging.getLogger(__name__)

#: Called after a publish is on the bus: (event, users online) -> push jobs handed off.
PushHandoff = Callable[[dict[str, Any], set[str]], Awaitable[None]]


@dataclass(frozen=True, slots=True)
class Answer:
    status: int
    body: dict[str, Any]


def _content(req: PublishRequest) -> dict[str, Any]:
    content = {f: getattr(req, f) for f in CONTENT_FIELDS}
    for name in ("created_by", "instance"):
        if content[name] is not None:
            content[name] = str(content[name])
    return content


def _body(stored: inbox.Published) -> dict[str, Any]:
    return {
        "created": len(stored.rows),
        "notifications": [
            {"recipient": s.user_id, "uid": str(s.uid), "seq": s.seq} for s in stored.rows
        ],
    }


def _push(req: PublishRequest) -> dict[str, Any] | None:
    return msgspec.to_builtins(req.push) if req.push is not None else {"when": "offline"}


class Publishing:
    def __init__(self, pool: asyncpg.Pool, publisher: Publisher,
                 push_handoff: PushHandoff | None = None):
        self._pool = pool
        self._publisher = publisher
        self._push_handoff = push_handoff
        self._outbox_done: list[int] = []
        self._outbox_batch: asyncio.Future[None] | None = None
        self._deleter: asyncio.Task[None] | None = None

    async def publish(self, req: PublishRequest, users: list[str]) -> Answer:
        """Publish (or schedule, with ``delay``) ``req`` to ``users`` (distinct ids)."""
        if req.delay:
            return await self._schedule(req)
        if not req.persist:
            return await self._live_only(req, users)
        content, push = _content(req), _push(req)
        if req.idempotency_key is None:
            # one statement stores the rows, the counts and the outbox row atomically
            stored = await inbox.publish(self._pool, users, content, push)
            body = _body(stored)
        else:
            request_hash = hashlib.sha256(msgspec.json.encode(req)).hexdigest()
            async with self._pool.acquire() as conn, conn.transaction():
                earlier = await idempotency.claim(conn, req.idempotency_key, request_hash)
                if earlier is not None:
                    if earlier["request_hash"] != request_hash:
                        raise Conflict("idempotency_key was used with a different request",
                                       code="idempotency_key_reused")
                    return Answer(earlier["status"], earlier["response"])
                stored = await inbox.publish(conn, users, content, push)
                body = _body(stored)
                await idempotency.finish(conn, req.idempotency_key, 201, body)
        event = events.notification_event(
            content | {"created_at": stored.created_at, "updated_at": stored.created_at},
            (events.Recipient(s.user_id, s.id, str(s.uid), s.seq, s.counts) for s in stored.rows),
            push,
        )
        if await self.hand_off(event):
            await self._outbox_delete(stored.outbox_id)
        return Answer(201, body)

    async def _outbox_delete(self, outbox_id: int) -> None:
        """Delete a handed-off publish's outbox row, in one statement with concurrent ones.

        Publishes that finish in the same moment share one DELETE (one at a time
        runs); each waits for the statement that covers its row, so the row is
        gone when the producer is answered. A failed delete only leaves rows for
        the relay, which republishes them; sockets drop seqs they already have.
        """
        self._outbox_done.append(outbox_id)
        if self._outbox_batch is None:
            self._outbox_batch = asyncio.get_running_loop().create_future()
        batch = self._outbox_batch
        if self._deleter is None:
            self._deleter = asyncio.create_task(self._delete_done())
        await asyncio.shield(batch)

    async def _delete_done(self) -> None:
        try:
            while self._outbox_done:
                await asyncio.sleep(0)  # let the publishes of this moment gather
                ids, batch = self._outbox_done, self._outbox_batch
                self._outbox_done, self._outbox_batch = [], None
                assert batch is not None
                try:
                    await outbox.delete(self._pool, ids)
                except (OSError, asyncpg.PostgresError) as exc:
                    log.warning("outbox rows not deleted, the relay will republish: %s", exc)
                batch.set_result(None)
        finally:
            self._deleter = None

    async def _route(self, event: dict[str, Any]) -> set[str]:
        """The event to the nodes of its online users, its pushes to the queue; who was online."""
        online = await self._publisher.publish(event)
        if self._push_handoff is not None:
            await self._push_handoff(event, online)
        return online

    async def hand_off(self, event: dict[str, Any]) -> bool:
        """Put a committed event on the bus and its pushes in the queue; False if Redis failed."""
        try:
            await self._route(event)
        except Exception as exc:  # Redis down or failing: the outbox keeps the event
            log.warning("bus publish failed, left for the outbox relay: %s", exc)
            return False
        return True

    async def _live_only(self, req: PublishRequest, users: list[str]) -> Answer:
        now = datetime.now(UTC)
        content = _content(req) | {"created_at": now, "updated_at": now}
        recipients = [events.Recipient(u, None, str(uuid.uuid4()), None, None) for u in users]
        event = events.notification_event(content, recipients, _push(req))
        try:
            online = await self._route(event)
        except (RedisError, OSError) as exc:  # nothing is stored to retry from: say so
            raise Unavailable("live delivery is unavailable (Redis); nothing was sent") from exc
        return Answer(202, {
            "created": 0,
            "delivered_live": len(online),
            "notifications": [{"recipient": r.user_id, "uid": r.uid, "seq": None}
                              for r in recipients],
        })

    async def _schedule(self, req: PublishRequest) -> Answer:
        assert req.delay is not None
        due = datetime.now(UTC) + timedelta(seconds=req.delay)
        request = msgspec.to_builtins(msgspec.structs.replace(req, delay=None))
        sid = await scheduled.add(self._pool, request, due)
        return Answer(202, {"scheduled": True, "id": sid, "deliver_at": due})
