"""Streamed publishes in progress (``tidings_streamed``, schema 8).

What may live here: the SQL of ``tidings_streamed``: a publish stored in chunks
keeps here its full recipient list, and what fixes their uids, from its first
chunk's commit until its last chunk is stored.

Contracts:

- :func:`begin` writes the row inside the first chunk's transaction, so the
  row exists exactly when some of the publish is stored. It is idempotent on
  ``uid_base``: a retry of that transaction after a lost connection gets the
  row its first attempt wrote.
- :func:`finish` deletes the row and, for a publish with an idempotency key,
  writes the key's answer, in one statement.
- :func:`claim_due` locks rows past their due time that no one else holds
  (``SKIP LOCKED``), for the caller to complete inside its transaction;
  :func:`postpone` gives a row that could not be completed a later due time.
"""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from .db import Connection, Pool
from .errors import store_edge


@dataclass(frozen=True, slots=True)
class Streamed:
    """A streamed publish in progress: every recipient, in order, and its shared parts."""

    id: int
    uid_base: uuid.UUID
    users: list[str]
    content: dict[str, Any]
    push: dict[str, Any] | None
    idempotency_key: str | None


@store_edge
async def begin(conn: Connection, uid_base: str, users: Sequence[str], content: dict[str, Any],
                push: dict[str, Any] | None, key: str | None, due_in: float) -> int:
    """Record a publish whose first chunk the caller's transaction stores; its id.

    The relay takes it ``due_in`` seconds from now unless :func:`finish` ran first.
    """
    return await conn.fetchval(
        "INSERT INTO tidings_streamed (uid_base, users, content, push, idempotency_key, due_at)"
        " VALUES ($1, string_to_array($2, E'\\n'), $3, $4, $5, now() + make_interval(secs => $6))"
        " ON CONFLICT (uid_base) DO UPDATE SET due_at = tidings_streamed.due_at RETURNING id",
        uid_base, "\n".join(users), content, push, key, due_in)  # one text: see store.publish


@store_edge
async def base_of(conn: Connection, key: str) -> str | None:
    """The ``uid_base`` of the publish in progress under idempotency ``key``, if any."""
    found = await conn.fetchval(
        "SELECT uid_base FROM tidings_streamed WHERE idempotency_key = $1", key)
    return None if found is None else str(found)


@store_edge
async def finish(conn: Connection | Pool, streamed_id: int,
                 answer: dict[str, Any] | None) -> None:
    """Delete the row (every chunk is stored); its idempotency key, if it has one, gets
    ``answer`` as its 201. A row completed meanwhile by someone else changes nothing."""
    await conn.execute(
        "WITH gone AS (DELETE FROM tidings_streamed WHERE id = $1 RETURNING idempotency_key)"
        " UPDATE tidings_idempotency i SET status = 201, response = $2"
        " FROM gone WHERE i.key = gone.idempotency_key",
        streamed_id, answer)


@store_edge
async def claim_due(conn: Connection, limit: int) -> list[Streamed]:
    """Lock up to ``limit`` rows past due, oldest first; call inside a transaction."""
    rows = await conn.fetch(
        "SELECT id, uid_base, users, content, push, idempotency_key FROM tidings_streamed"
        " WHERE due_at <= now() ORDER BY due_at, id LIMIT $1 FOR UPDATE SKIP LOCKED", limit)
    return [Streamed(*r) for r in rows]


@store_edge
async def postpone(conn: Connection | Pool, streamed_id: int, seconds: float) -> None:
    await conn.execute(
        "UPDATE tidings_streamed SET due_at = now() + make_interval(secs => $2) WHERE id = $1",
        streamed_id, seconds)
