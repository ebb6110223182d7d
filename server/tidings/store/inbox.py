"""Notifications and per-user counts: read, list, replay and the inbox actions.

Storing publishes lives in :mod:`tidings.store.publish`. Every coroutine here
raises only the project's errors (``store_edge``).

Contracts:

- Counts (``total_count`` ACTIVE, ``unread_count``) change in the same
  statement as the rows they count; ``version`` grows with each change.
- Every statement is scoped by ``user_id``: one user's uid never reaches
  another user's rows.
"""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import asyncpg

from ..core.replies import Counts
from .db import Connection, Pool
from .errors import store_edge

_COLUMNS = (
    "id, uid, user_id, seq, message, type, title, data, created_by, model, instance, method,"
    " changed_data, custom_info, status, read_at, created_at, updated_at"
)


@store_edge
async def counts(conn: Connection | Pool, user_id: str) -> Counts:
    row = await conn.fetchrow(
        "SELECT total_count, unread_count, version FROM tidings_user_state WHERE user_id = $1",
        user_id,
    )
    return Counts(row[0], row[1], row[2]) if row else Counts(0, 0, 0)


@dataclass(frozen=True, slots=True)
class State:
    last_seq: int
    counts: Counts


@store_edge
async def state(conn: Connection | Pool, user_id: str) -> State:
    """The user's newest seq and counts, read together."""
    row = await conn.fetchrow(
        "SELECT last_seq, total_count, unread_count, version FROM tidings_user_state"
        " WHERE user_id = $1", user_id)
    if row is None:
        return State(0, Counts(0, 0, 0))
    return State(row[0], Counts(row[1], row[2], row[3]))


@store_edge
async def states(conn: Connection | Pool, user_ids: Sequence[str]) -> dict[str, State]:
    """The newest seq and counts of each of ``user_ids``, in one statement (a user with
    nothing stored yet has seq 0 and zero counts)."""
    rows = await conn.fetch(
        "SELECT user_id, last_seq, total_count, unread_count, version FROM tidings_user_state"
        " WHERE user_id = ANY($1::text[])", list(user_ids))
    found = {r[0]: State(r[1], Counts(r[2], r[3], r[4])) for r in rows}
    empty = State(0, Counts(0, 0, 0))
    return {u: found.get(u, empty) for u in user_ids}


def page_sql(is_read: bool | None, before: bool) -> str:
    """The list statement: $1 user, $2 limit, $3 offset, $4 the ``before`` seq if any."""
    where = "user_id = $1 AND status = 'ACTIVE'"
    if is_read is True:
        where += " AND read_at IS NOT NULL"
    elif is_read is False:
        where += " AND read_at IS NULL"
    if before:
        where += " AND seq < $4"
    return (f"SELECT {_COLUMNS} FROM tidings_notifications WHERE {where}"
            " ORDER BY seq DESC LIMIT $2 OFFSET $3")


@store_edge
async def page(
    conn: Connection | Pool, user_id: str, *, limit: int, offset: int = 0,
    is_read: bool | None = None, before: int | None = None,
) -> list[asyncpg.Record]:
    """A user's ACTIVE notifications, newest first, optionally read/unread and below a seq."""
    args: list[Any] = [user_id, limit, offset] + ([before] if before is not None else [])
    return await conn.fetch(page_sql(is_read, before is not None), *args)


@store_edge
async def between(
    conn: Connection | Pool, user_id: str, after: int, upto: int,
) -> list[asyncpg.Record]:
    """ACTIVE notifications with ``after`` < seq <= ``upto``, oldest first (replays)."""
    return await conn.fetch(
        f"SELECT {_COLUMNS} FROM tidings_notifications"
        " WHERE user_id = $1 AND status = 'ACTIVE' AND seq > $2 AND seq <= $3 ORDER BY seq",
        user_id, after, upto,
    )


@store_edge
async def one(conn: Connection | Pool, user_id: str,
              uid: uuid.UUID) -> asyncpg.Record | None:
    return await conn.fetchrow(
        f"SELECT {_COLUMNS} FROM tidings_notifications"
        " WHERE user_id = $1 AND uid = $2 AND status = 'ACTIVE'",
        user_id, uid,
    )


@store_edge
async def owner(conn: Connection | Pool, uid: uuid.UUID) -> str | None:
    """The recipient of a stored notification (producer side: not user-scoped)."""
    return await conn.fetchval("SELECT user_id FROM tidings_notifications WHERE uid = $1", uid)


@store_edge
async def by_ids(conn: Connection | Pool,
                 ids: Sequence[int]) -> list[asyncpg.Record]:
    """Stored notifications by id with their users' current counts (for the outbox relay)."""
    return await conn.fetch(
        f"SELECT n.{_COLUMNS.replace(', ', ', n.')}, s.total_count, s.unread_count, s.version"
        " FROM tidings_notifications n JOIN tidings_user_state s USING (user_id)"
        " WHERE n.id = ANY($1::bigint[]) ORDER BY n.user_id, n.seq",
        list(ids),
    )


def _change(set_clause: str, state_clause: str, *, only_unread: bool, by_uid: bool) -> str:
    """A statement changing the user's matching ACTIVE rows and counts together.

    ``was_unread`` reads the new row, right for removal, which leaves read_at alone.
    """
    where = "user_id = $1 AND status = 'ACTIVE'"
    if only_unread:
        where += " AND read_at IS NULL"
    if by_uid:
        where += " AND uid = ANY($2::uuid[])"
    return f"""
WITH changed AS (
    UPDATE tidings_notifications SET {set_clause}, updated_at = now()
    WHERE {where}
    RETURNING (read_at IS NULL) AS was_unread
), n AS (
    SELECT count(*) AS c, count(*) FILTER (WHERE was_unread) AS u FROM changed
), st AS (
    UPDATE tidings_user_state s SET {state_clause}, version = s.version + 1, updated_at = now()
    FROM n WHERE s.user_id = $1 AND n.c > 0
    RETURNING s.total_count, s.unread_count, s.version
)
SELECT n.c AS updated, st.total_count, st.unread_count, st.version FROM n LEFT JOIN st ON true
"""


_READ = ("read_at = now()", "unread_count = s.unread_count - n.c")
_REMOVE = ("status = 'REMOVED'",
           "total_count = s.total_count - n.c, unread_count = s.unread_count - n.u")

ACTIONS = {
    "MARK_AS_READ": _change(*_READ, only_unread=True, by_uid=True),
    "MARK_ALL_AS_READ": _change(*_READ, only_unread=True, by_uid=False),
    "MARK_AS_REMOVED": _change(*_REMOVE, only_unread=False, by_uid=True),
    "REMOVED_ALL": _change(*_REMOVE, only_unread=False, by_uid=False),
}
#: Actions that name their notifications.
BY_UID = ("MARK_AS_READ", "MARK_AS_REMOVED")


@store_edge
async def act(conn: Connection | Pool, user_id: str, action: str,
              uids: Sequence[uuid.UUID] = ()) -> tuple[int, Counts | None]:
    """Apply an inbox action to the user's own notifications.

    Returns (rows changed, new counts), counts None when nothing changed.
    """
    sql = ACTIONS[action]
    args: list[Any] = [user_id]
    if action in BY_UID:
        args.append(list(uids))
    row = await conn.fetchrow(sql, *args)
    if not row["updated"]:
        return 0, None
    return row["updated"], Counts(row["total_count"], row["unread_count"], row["version"])
