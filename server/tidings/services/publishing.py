"""Publishing a notification: store it durably, then route it live and hand off pushes.

Contracts:

- A stored notification is committed (with its outbox row) before the caller
  is answered; the live event and push jobs follow the commit. If Redis fails
  then, the outbox row stays and the relay publishes it later: nothing
  acknowledged is lost, and a socket may see an event twice only across such a
  retry (the gateway drops seqs it already sent).
- Concurrent publishes (without an idempotency key) commit together: one
  statement stores all the publishes of a moment, their events go to Redis
  together, in commit order, and their outbox rows go in one DELETE, all
  before their callers are answered. A publish the database refuses fails
  alone.
- With an ``idempotency_key``, the same key and body return the first answer
  and store nothing new; the same key with another body is a 409.
- ``persist: false`` stores nothing: no seq, no counts, no replay.
"""

from __future__ import annotations

import hashlib
import logging
import uuid
from collections.abc import Awaitable, Callable, Sequence
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
from .coalesce import Coalescer

log = logging.getLogger(__name__)

#: Most notification rows one grouped statement stores (a larger publish goes alone).
GROUP_ROWS = 10_000

#: Called once events are on the bus: (events, their users online) -> push jobs handed off.
PushHandoff = Callable[[Sequence[dict[str, Any]], set[str]], Awaitable[None]]


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


def _event(draft: inbox.Draft, stored: inbox.Published) -> dict[str, Any]:
    return events.notification_event(
        draft.content | {"created_at": stored.created_at, "updated_at": stored.created_at},
        (events.Recipient(s.user_id, s.id, str(s.uid), s.seq, s.counts) for s in stored.rows),
        draft.push,
    )


class Publishing:
    def __init__(self, pool: asyncpg.Pool, publisher: Publisher,
                 push_handoff: PushHandoff | None = None):
        self._pool = pool
        self._publisher = publisher
        self._push_handoff = push_handoff
        self._commits: Coalescer[inbox.Draft, tuple[inbox.Published, bool]] = Coalescer(
            self._commit, weight=lambda d: len(d.users), max_weight=GROUP_ROWS)
        self._deletes: Coalescer[int, None] = Coalescer(self._delete, max_items=1000)

    async def publish(self, req: PublishRequest, users: list[str]) -> Answer:
        """Publish (or schedule, with ``delay``) ``req`` to ``users`` (distinct ids)."""
        if req.delay:
            return await self._schedule(req)
        if not req.persist:
            return await self._live_only(req, users)
        draft = inbox.Draft(users, _content(req), _push(req))
        if req.idempotency_key is None:
            # committed with the publishes of the same moment, in one statement
            stored, handed_off = await self._commits.submit(draft)
        else:
            request_hash = hashlib.sha256(msgspec.json.encode(req)).hexdigest()
            async with self._pool.acquire() as conn, conn.transaction():
                earlier = await idempotency.claim(conn, req.idempotency_key, request_hash)
                if earlier is not None:
                    if earlier["request_hash"] != request_hash:
                        raise Conflict("idempotency_key was used with a different request",
                                       code="idempotency_key_reused")
                    return Answer(earlier["status"], earlier["response"])
                [stored] = await inbox.publish(conn, [draft])
                await idempotency.finish(conn, req.idempotency_key, 201, _body(stored))
            handed_off = await self.hand_off([_event(draft, stored)])
        if handed_off:
            # the row is gone before the producer is answered; a failed delete
            # only leaves it to the relay, and sockets drop seqs they have
            await self._deletes.submit(stored.outbox_id)
        return Answer(201, _body(stored))

    async def _commit(
        self, drafts: list[inbox.Draft],
    ) -> list[tuple[inbox.Published, bool] | BaseException]:
        """Store the drafts in one statement, then hand their events off together."""
        try:
            stored = await inbox.publish(self._pool, drafts)
        except asyncpg.PostgresError as exc:
            if len(drafts) == 1:
                raise
            # a draft the database refuses must not fail the others with it
            log.warning("a grouped publish failed (%s); storing its %d drafts one by one",
                        type(exc).__name__, len(drafts))
            return [await self._alone(draft) for draft in drafts]
        handed_off = await self.hand_off([_event(d, s) for d, s in zip(drafts, stored,
                                                                       strict=True)])
        return [(s, handed_off) for s in stored]

    async def _alone(self, draft: inbox.Draft) -> tuple[inbox.Published, bool] | BaseException:
        try:
            [result] = await self._commit([draft])
        except asyncpg.PostgresError as exc:
            return exc
        return result

    async def _delete(self, outbox_ids: list[int]) -> list[None]:
        try:
            await outbox.delete(self._pool, outbox_ids)
        except (OSError, asyncpg.PostgresError) as exc:
            log.warning("outbox rows not deleted, the relay will republish: %s", exc)
        return [None] * len(outbox_ids)

    async def _route(self, evs: Sequence[dict[str, Any]]) -> set[str]:
        """Events to the nodes of their online users, pushes to the queue; who was online."""
        online = await self._publisher.publish(evs)
        if self._push_handoff is not None:
            await self._push_handoff(evs, online)
        return online

    async def hand_off(self, evs: Sequence[dict[str, Any]]) -> bool:
        """Put committed events on the bus, in order, and their pushes in the queue.

        False if Redis failed: their outbox rows stay for the relay.
        """
        try:
            await self._route(evs)
        except Exception as exc:  # Redis down or failing: the outbox keeps the events
            log.warning("bus publish failed, left for the outbox relay: %s", exc)
            return False
        return True

    async def _live_only(self, req: PublishRequest, users: list[str]) -> Answer:
        now = datetime.now(UTC)
        content = _content(req) | {"created_at": now, "updated_at": now}
        recipients = [events.Recipient(u, None, str(uuid.uuid4()), None, None) for u in users]
        event = events.notification_event(content, recipients, _push(req))
        try:
            online = await self._route([event])
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
