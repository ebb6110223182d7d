"""Push jobs in PostgreSQL: the pushes owed for committed notifications (schema 3).

What may live here: the SQL of ``tidings_push_jobs`` and ``tidings_push_options``.

Contracts:

- :func:`add` writes the jobs of some publishes inside the caller's transaction:
  one options row per :class:`OwedPush` that names notifications, shared by its
  jobs, and one small job row per notification. On commit the workers are woken
  (``NOTIFY`` on :data:`WAKE_CHANNEL`); a worker that missed the wake-up still
  finds due jobs by polling.
- A job row exists until its outcome is logged (or it is a dead letter): the
  pushes owed for an acknowledged notification never live only in Redis.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import asyncpg
import orjson

#: The PostgreSQL NOTIFY channel that wakes push workers when jobs are added.
WAKE_CHANNEL = "tidings_push"


@dataclass(frozen=True, slots=True)
class OwedPush:
    """The pushes one publish owes: its push options and the recipients' rows that get a job."""

    options: dict[str, Any]  # the publish's "push" object (PushOptions as builtins)
    notification_ids: Sequence[int]  # tidings_notifications.id of each recipient owed a push
    delay: float = 0.0  # seconds from now until the jobs are due (unread_after: push.after)
    check_unread: bool = False  # unread_after: send only if still ACTIVE and unread when due


_ADD = """
WITH o AS (
    INSERT INTO tidings_push_options (options)
    SELECT options::jsonb FROM unnest($1::text[]) WITH ORDINALITY AS u(options, k) ORDER BY k
    RETURNING id
), numbered AS (
    SELECT id, row_number() OVER (ORDER BY id) AS k FROM o
), j AS (
    INSERT INTO tidings_push_jobs (notification_id, options_id, check_unread, due_at)
    SELECT n.notification_id, numbered.id, c.check_unread,
           now() + make_interval(secs => c.delay)
    FROM unnest($2::bigint[], $3::int[]) AS n(notification_id, k)
    JOIN numbered USING (k)
    JOIN unnest($4::bool[], $5::float8[]) WITH ORDINALITY AS c(check_unread, delay, k) USING (k)
    RETURNING 1
)
SELECT count(*) FROM j
"""


async def add(conn: asyncpg.Connection, owed: Sequence[OwedPush]) -> int:
    """Insert the jobs of ``owed`` in the caller's transaction; returns how many.

    Identity columns are allocated in row order within one statement, so the
    k-th options row inserted gets the k-th smallest id.
    """
    owed = [o for o in owed if o.notification_ids]
    if not owed:
        return 0
    ids: list[int] = []
    which: list[int] = []
    for k, o in enumerate(owed, 1):
        ids.extend(o.notification_ids)
        which.extend([k] * len(o.notification_ids))
    n = await conn.fetchval(
        _ADD, [orjson.dumps(o.options).decode() for o in owed], ids, which,
        [o.check_unread for o in owed], [float(o.delay) for o in owed])
    await conn.execute("SELECT pg_notify($1, '')", WAKE_CHANNEL)
    return int(n)
