"""Storing publishes: one idempotent statement for many drafts (notifications, counts, outbox).

What may live here: the publish statement, the shapes it takes and returns, and
reading a committed publish back in that shape (:func:`read_back`, for the relay).

Contracts:

- ``seq`` is allocated per user in the inserting statement, from the user's
  state row, locked in user-id order, so concurrent batches never deadlock and
  every user's seqs are gap-free in commit order.
- Counts change in the same statement as the rows they count.
- Idempotent on the rows' uids, which the caller chooses before the first
  attempt: a retry after a lost connection stores nothing twice and allocates
  no second seq.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, NamedTuple

import asyncpg
import orjson

from ..core.replies import ACTIVE, CONTENT_FIELDS
from . import inbox
from .db import Connection, Pool
from .errors import store_edge

_JSON_FIELDS = ("data", "changed_data", "custom_info")
_CONTENT_ARRAYS = ", ".join(f"${i}::text[]" for i in range(4, len(CONTENT_FIELDS) + 4))
_PUSH_PARAM = len(CONTENT_FIELDS) + 4
_CONTENT_VALUES = ", ".join(f"c.{f}::jsonb" if f in _JSON_FIELDS else f"c.{f}"
                            for f in CONTENT_FIELDS)

def _statement(retry: bool) -> str:
    """The publish statement: several publishes in one, idempotent on the rows' uids.

    $1/$2/$3: per recipient row, its user, uid and publish (1-based), each list
    joined into one text (users by newlines, which no user id holds; the others by
    commas): asyncpg encodes a text in one go, an array element by element (4.5 ms
    of client CPU for 10,000 user ids, 0.1 ms as one text). Then one array per
    content field and one of push options, indexed by publish (JSON values as text:
    asyncpg reads a list inside a jsonb[] as a nested array). A user named by k new
    rows gets k seqs, in row order.

    ``retry``: a row whose uid is already stored for its user (an earlier attempt
    committed) is returned as it is, with no new seq, no count and no outbox row;
    the others are inserted. Without it every row is inserted (a stored uid is a
    unique violation) and no table is read but through a unique index: its generic
    plan stays cheap however small the tables were when it was made (looking the
    uids up first became, planned on a young table, a scan of the whole table).
    """
    fresh_rows = "r WHERE r.uid NOT IN (SELECT uid FROM old)" if retry else "r"
    old = """, old AS (
    SELECT n.id, n.uid, n.seq, n.created_at
    FROM tidings_notifications n JOIN r ON n.uid = r.uid AND n.user_id = r.user_id
)""" if retry else ""
    read_back = """
UNION ALL
SELECT old.id, old.seq, NULL, NULL, NULL, NULL, old.created_at, r.o
FROM old JOIN r USING (uid)""" if retry else ""
    return f"""
WITH r AS (
    SELECT r.user_id, r.uid, r.p, r.o
    FROM unnest(string_to_array($1::text, E'\\n'), string_to_array($2::text, ',')::uuid[],
                string_to_array($3::text, ',')::int[]) WITH ORDINALITY AS r(user_id, uid, p, o)
){old}, fresh AS (
    SELECT r.*, row_number() OVER (PARTITION BY r.user_id ORDER BY r.o) AS i,
           count(*) OVER (PARTITION BY r.user_id) AS n
    FROM {fresh_rows}
), st AS (
    INSERT INTO tidings_user_state AS s (user_id, last_seq, total_count, unread_count, version)
    SELECT DISTINCT ON (user_id) user_id, n, n, n, n FROM fresh ORDER BY user_id
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
    SELECT f.uid, f.user_id, st.last_seq - f.n + f.i, {_CONTENT_VALUES}
    FROM fresh f JOIN st USING (user_id) JOIN c USING (p)
    ORDER BY f.o
    RETURNING id, uid, seq, created_at
), ob AS (
    INSERT INTO tidings_outbox (notification_ids, push)
    SELECT g.ids, c.push::jsonb
    FROM (SELECT f.p, array_agg(ins.id ORDER BY ins.id) AS ids
          FROM ins JOIN fresh f USING (uid) GROUP BY f.p) AS g JOIN c USING (p)
    RETURNING id, notification_ids[1] AS first_id
)
SELECT ins.id, ins.seq, st.total_count - (f.n - f.i) AS total_count,
       st.unread_count - (f.n - f.i) AS unread_count, st.version - (f.n - f.i) AS version,
       ob.id AS outbox_id, ins.created_at, f.o
FROM ins JOIN fresh f USING (uid) JOIN st ON st.user_id = f.user_id
LEFT JOIN ob ON ob.first_id = ins.id{read_back}
ORDER BY 8
"""


#: A first attempt outside a transaction: every row new.
_PUBLISH_NEW = _statement(retry=False)
#: Any other attempt: rows an earlier attempt stored are read back.
_PUBLISH = _statement(retry=True)

#: The unique constraint a concurrent attempt of the same publish runs into.
_UID_KEY = "tidings_notifications_uid_key"
_RACE_ATTEMPTS = 3


def _json(value: Any) -> str | None:
    return None if value is None else orjson.dumps(value).decode()


@dataclass(frozen=True, slots=True)
class Draft:
    """A publish to store: distinct recipients (user ids: no control character), each
    one's uid (chosen by the caller, as text), the content fields and the push options."""

    users: Sequence[str]
    uids: Sequence[str]
    content: dict[str, Any]
    push: dict[str, Any] | None

    def part(self, start: int, stop: int) -> Draft:
        """The same publish for the recipients ``start`` to ``stop`` (a chunk)."""
        return Draft(self.users[start:stop], self.uids[start:stop], self.content, self.push)


class Row(NamedTuple):
    """One recipient's row of a publish: its notification's id and seq, and the user's
    counts right after it (the current ones when :func:`read_back`; None when an
    earlier attempt stored it). All None for a live-only publish, which stores nothing."""

    id: int | None
    seq: int | None
    total: int | None
    unread: int | None
    version: int | None


#: The row of a recipient of a live-only publish.
NOT_STORED = Row(None, None, None, None, None)


@dataclass(slots=True)
class Published:
    """A stored publish: its draft and one row per recipient, in the draft's order
    (a live-only publish has every row :data:`NOT_STORED`).

    ``outbox_id`` is 0 when an earlier attempt had stored it all (that attempt's
    outbox row, if not yet retired, is left to the relay).
    """

    draft: Draft
    rows: Sequence[Row]
    created_at: Any = None
    outbox_id: int = 0


@dataclass(frozen=True, slots=True)
class Prepared:
    """Drafts encoded as the publish statement's parameters."""

    drafts: Sequence[Draft]
    args: tuple[Any, ...]


def prepare(drafts: Sequence[Draft]) -> Prepared:
    """Encode ``drafts`` (no I/O). Raises what the JSON encoder raises for content it
    cannot encode (``TypeError``: an integer over 64 bits, nesting too deep, a foreign
    type), before anything is sent."""
    for draft in drafts:
        if len(draft.uids) != len(draft.users):
            raise ValueError("a draft needs one uid per recipient")
    users = "\n".join([u for d in drafts for u in d.users])
    uids = ",".join([u for d in drafts for u in d.uids])
    publish_of = ",".join([str(p) for p, d in enumerate(drafts, 1) for _ in d.users])
    columns = [[_json(d.content.get(f)) if f in _JSON_FIELDS else d.content.get(f)
                for d in drafts] for f in CONTENT_FIELDS]
    return Prepared(drafts, (users, uids, publish_of, *columns,
                             [_json(d.push) for d in drafts]))


@store_edge
async def publish(conn: Connection | Pool, prepared: Prepared, *,
                  new: bool = False) -> list[Published]:
    """Store each draft: one notification per recipient, the counts and one outbox row.

    One statement whatever the number of drafts and users, atomic by itself: run
    it on the pool, or inside a transaction with other statements. Drafts are
    stored in order: a user named by several gets their seqs in draft order, and
    each row's counts are those right after it. Idempotent on the uids: running
    it again after a lost connection stores nothing twice. Outside a transaction,
    a concurrent attempt of the same drafts is waited for and then read back.
    Raises :class:`~tidings.core.errors.StoreError` if PostgreSQL refuses a draft
    (then nothing of the statement is stored) and
    :class:`~tidings.core.errors.StoreUnavailable` if the outcome is unknown.

    ``new``: the caller knows no uid of ``prepared`` is stored (a first attempt inside a
    transaction), so no uid is looked up; a stored one is then a
    :class:`~tidings.core.errors.StoreError`.
    """
    # outside a transaction, the first try assumes every row new: a uid stored by an
    # earlier or concurrent attempt fails it (nothing stored) and the next try reads it back
    in_xact = isinstance(conn, asyncpg.Connection) and conn.is_in_transaction()
    statement = _PUBLISH if in_xact and not new else _PUBLISH_NEW
    for attempt in range(1, _RACE_ATTEMPTS + 2):
        try:
            records = await conn.fetch(statement, *prepared.args)
            break
        except asyncpg.UniqueViolationError as exc:
            if exc.constraint_name != _UID_KEY or in_xact or attempt > _RACE_ATTEMPTS:
                raise
            statement = _PUBLISH
    published = []
    make = Row._make
    start = 0
    for draft in prepared.drafts:  # every recipient has one row: fresh or read back
        rows = records[start:start + len(draft.users)]
        start += len(rows)
        # the outbox id rides on the publish's first fresh row (its first row, unless an
        # earlier attempt stored some)
        outbox_id = next((r["outbox_id"] for r in rows if r["outbox_id"] is not None), 0)
        published.append(Published(draft, [make(r[:5]) for r in rows],
                                   rows[0]["created_at"] if rows else None, outbox_id))
    return published


async def read_back(conn: Connection, notification_ids: Sequence[int],
                    push: dict[str, Any] | None) -> Published | None:
    """A committed publish read again (the relay): its recipients still ACTIVE, with
    their users' current counts, in user and seq order; None if none of its rows is left.
    ``outbox_id`` stays 0."""
    found = await inbox.by_ids(conn, notification_ids)
    if not found:
        return None
    first = found[0]
    live = [r for r in found if r["status"] == ACTIVE]
    content = {f: first[f] for f in CONTENT_FIELDS}
    draft = Draft([r["user_id"] for r in live], [str(r["uid"]) for r in live], content, push)
    return Published(draft, [Row(r["id"], r["seq"], r["total_count"], r["unread_count"],
                                 r["version"]) for r in live], first["created_at"])
