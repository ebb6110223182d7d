"""Notifications and per-user counts: publish, list, replay and the inbox actions.

Contracts:

- ``seq`` is allocated per user in the inserting statement, from the user's
  state row, locked in user-id order, so concurrent batches never deadlock and
  every user's seqs are gap-free in commit order.
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
import orjson

from ..core.shapes import CONTENT_FIELDS, Counts

_COLUMNS = (
    "id, uid, user_id, seq, message, type, title, data, created_by, model, instance, method,"
    " changed_data, custom_info, status, read_at, created_at, updated_at"
)

_JSON_FIELDS = ("data", "changed_data", "custom_info")
_CONTENT_ARRAYS = ", ".join(f"${i}::text[]" for i in range(4, len(CONTENT_FIELDS) + 4))
_PUSH_PARAM = len(CONTENT_FIELDS) + 4
_CONTENT_VALUES = ", ".join(f"c.{f}::jsonb" if f in _JSON_FIELDS else f"c.{f}"
                            for f in CONTENT_FIELDS)

#: Several publishes in one statement. $1/$2/$3: per recipient row, its user, uid
#: and publish (1-based); then one array per content field and one of push
#: options, indexed by publish (JSON values as text: asyncpg reads a list
#: inside a jsonb[] as a nested array). A user named by k publishes gets k seqs, in row order.
_PUBLISH = f"""
WITH r AS (
    SELECT r.user_id, r.uid, r.p, r.o,
           row_number() OVER (PARTITION BY r.user_id ORDER BY r.o) AS i,
           count(*) OVER (PARTITION BY r.user_id) AS n
    FROM unnest($1::text[], $2::uuid[], $3::int[]) WITH ORDINALITY AS r(user_id, uid, p, o)
), st AS (
    INSERT INTO tidings_user_state AS s (user_id, last_seq, total_count, unread_count, version)
    SELECT DISTINCT ON (user_id) user_id, n, n, n, n FROM r ORDER BY user_id
    ON CONFLICT (user_id) DO UPDATE SET
        last_seq = s.last_seq + excluded.last_seq,
        total_count = s.total_count + excluded.total_count,
        unread_count = s.unread_count + excluded.unread_count,
        version = s.version + excluded.version, updated_at = now()
    RETURNING user_id, last_seq, total_count, unread_count, version
), c AS (
    SELECT * FROM unnest({_CONTENT_ARRAYS}, ${_PUSH_PARAM}::text[])
        WITH ORDINALITY AS c({", ".join(CONTENT_FIELDS)}, push, p)
), ins AS (
    INSERT INTO tidings_notifications (uid, user_id, seq, {", ".join(CONTENT_FIELDS)})
    SELECT r.uid, r.user_id, st.last_seq - r.n + r.i, {_CONTENT_VALUES}
    FROM r JOIN st USING (user_id) JOIN c USING (p)
    ORDER BY r.o
    RETURNING id, uid, seq, created_at
), ob AS (
    INSERT INTO tidings_outbox (notification_ids, push)
    SELECT g.ids, c.push::jsonb
    FROM (SELECT r.p, array_agg(ins.id ORDER BY ins.id) AS ids
          FROM ins JOIN r USING (uid) GROUP BY r.p) AS g JOIN c USING (p)
    RETURNING id, notification_ids[1] AS first_id
)
SELECT r.p, ins.id, ins.uid, r.user_id, ins.seq, ins.created_at,
       st.total_count - (r.n - r.i) AS total_count,
       st.unread_count - (r.n - r.i) AS unread_count,
       st.version - (r.n - r.i) AS version, ob.id AS outbox_id
FROM ins JOIN r USING (uid) JOIN st ON st.user_id = r.user_id
LEFT JOIN ob ON ob.first_id = ins.id
ORDER BY r.o
"""


def _json(value: Any) -> str | None:
    return None if value is None else orjson.dumps(value).decode()


@dataclass(frozen=True, slots=True)
class Draft:
    """A publish to store: distinct recipients, the content fields, the push options."""

    users: Sequence[str]
    content: dict[str, Any]
    push: dict[str, Any] | None


@dataclass(frozen=True, slots=True)
class Stored:
    """One recipient's stored copy of a publish."""

    user_id: str
    id: int
    uid: uuid.UUID
    seq: int
    counts: Counts


@dataclass(slots=True)
class Published:
    """A stored publish: its recipients' copies, in the order given, and its outbox row."""

    rows: list[Stored]
    created_at: Any = None
    outbox_id: int = 0


async def publish(
    conn: asyncpg.Connection | asyncpg.Pool, drafts: Sequence[Draft],
) -> list[Published]:
    """Store each draft: one notification per recipient, the counts and one outbox row.

    One statement whatever the number of drafts and users, atomic by itself: run
    it on the pool, or inside a transaction with other statements. Drafts are
    stored in order: a user named by several gets their seqs in draft order, and
    each row's counts are those right after it.
    """
    users: list[str] = []
    publish_of: list[int] = []
    for p, draft in enumerate(drafts, 1):
        users.extend(draft.users)
        publish_of.extend([p] * len(draft.users))
    columns = [[_json(d.content.get(f)) if f in _JSON_FIELDS else d.content.get(f)
                for d in drafts] for f in CONTENT_FIELDS]
    records = await conn.fetch(
        _PUBLISH, users, [uuid.uuid4() for _ in users], publish_of, *columns,
        [_json(d.push) for d in drafts],
    )
    published = [Published([]) for _ in drafts]
    for r in records:
        out = published[r[0] - 1]
        out.rows.append(Stored(r[3], r[1], r[2], r[4], Counts(r[6], r[7], r[8])))
        out.created_at = r[5]
        if r[9] is not None:
            out.outbox_id = r[9]
    return published


async def counts(conn: asyncpg.Connection | asyncpg.Pool, user_id: str) -> Counts:
    row = await conn.fetchrow(
        "SELECT total_count, unread_count, version FROM tidings_user_state WHERE user_id = $1",
        user_id,
    )
    return Counts(row[0], row[1], row[2]) if row else Counts(0, 0, 0)


@dataclass(frozen=True, slots=True)
class State:
    last_seq: int
    counts: Counts


async def state(conn: asyncpg.Connection | asyncpg.Pool, user_id: str) -> State:
    """The user's newest seq and counts, read together."""
    row = await conn.fetchrow(
        "SELECT last_seq, total_count, unread_count, version FROM tidings_user_state"
        " WHERE user_id = $1", user_id)
    if row is None:
        return State(0, Counts(0, 0, 0))
    return State(row[0], Counts(row[1], row[2], row[3]))


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


async def page(
    conn: asyncpg.Connection | asyncpg.Pool, user_id: str, *, limit: int, offset: int = 0,
    is_read: bool | None = None, before: int | None = None,
) -> list[asyncpg.Record]:
    """A user's ACTIVE notifications, newest first, optionally read/unread and below a seq."""
    args: list[Any] = [user_id, limit, offset] + ([before] if before is not None else [])
    return await conn.fetch(page_sql(is_read, before is not None), *args)


async def between(
    conn: asyncpg.Connection | asyncpg.Pool, user_id: str, after: int, upto: int,
) -> list[asyncpg.Record]:
    """ACTIVE notifications with ``after`` < seq <= ``upto``, oldest first (replays)."""
    return await conn.fetch(
        f"SELECT {_COLUMNS} FROM tidings_notifications"
        " WHERE user_id = $1 AND status = 'ACTIVE' AND seq > $2 AND seq <= $3 ORDER BY seq",
        user_id, after, upto,
    )


async def one(conn: asyncpg.Connection | asyncpg.Pool, user_id: str,
              uid: uuid.UUID) -> asyncpg.Record | None:
    return await conn.fetchrow(
        f"SELECT {_COLUMNS} FROM tidings_notifications"
        " WHERE user_id = $1 AND uid = $2 AND status = 'ACTIVE'",
        user_id, uid,
    )


async def owner(conn: asyncpg.Connection | asyncpg.Pool, uid: uuid.UUID) -> str | None:
    """The recipient of a stored notification (producer side: not user-scoped)."""
    return await conn.fetchval("SELECT user_id FROM tidings_notifications WHERE uid = $1", uid)


async def by_ids(conn: asyncpg.Connection | asyncpg.Pool,
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


async def act(conn: asyncpg.Connection | asyncpg.Pool, user_id: str, action: str,
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
