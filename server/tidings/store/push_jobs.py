"""Push jobs in PostgreSQL: the pushes owed for committed notifications (schemas 3, 4, 5).

What may live here: the SQL of ``tidings_push_jobs`` and ``tidings_push_options``,
and the listening connection that wakes workers.

Contracts:

- :func:`add` writes the jobs of some publishes inside the caller's transaction:
  one options row per :class:`OwedPush` that names notifications, shared by its
  jobs, and one small job row per notification. On commit the workers are woken
  (``NOTIFY`` on :data:`WAKE_CHANNEL`); a worker that missed the wake-up still
  finds due jobs by polling.
- A job row exists until its outcome is logged (or it is a dead letter): the
  pushes owed for an acknowledged notification never live only in Redis.
- Every job belongs to one ``channel`` (``OwedPush.channel``: 'push', whose
  sends go to mobile and browser devices, or 'email'); a worker claims only its
  channel's jobs. A job with ``digest_ids`` is a digest
  (:mod:`tidings.store.digests`).
- :func:`claim` leases due jobs that no live worker holds (``FOR UPDATE SKIP
  LOCKED``: concurrent workers never claim one job together); a lease runs out
  unless :func:`renew` extends it, and a job whose lease ran out is claimed
  again (``taken_over``). What becomes of a claimed job is written by
  :mod:`tidings.store.push_results`.
- Times are the database's ``now()`` unless a caller passes ``now`` (unix
  seconds; tests drive a clock that way).
- Every function raises only :class:`~tidings.core.errors.StoreUnavailable` or
  :class:`~tidings.core.errors.StoreError`.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import asyncpg
import orjson

from ..core.push import PushJob, push_options
from ..core.requests import PushOptions
from .errors import store_edge

Pool = asyncpg.Pool

#: The PostgreSQL NOTIFY channel that wakes push workers when jobs are added.
WAKE_CHANNEL = "tidings_push"


@dataclass(frozen=True, slots=True)
class OwedPush:
    """The pushes one publish owes: its push options and the recipients' rows that get a job."""

    options: dict[str, Any]  # the publish's "push" object (PushOptions as builtins)
    notification_ids: Sequence[int]  # tidings_notifications.id of each recipient owed a push
    delay: float = 0.0  # seconds from now until the jobs are due (unread_after: push.after)
    check_unread: bool = False  # unread_after: send only if still ACTIVE and unread when due
    channel: str = "push"  # the worker that sends them: 'push' or 'email'


_ADD = """
WITH o AS (
    INSERT INTO tidings_push_options (options)
    SELECT options::jsonb FROM unnest($1::text[]) WITH ORDINALITY AS u(options, k) ORDER BY k
    RETURNING id
), numbered AS (
    SELECT id, row_number() OVER (ORDER BY id) AS k FROM o
), j AS (
    INSERT INTO tidings_push_jobs (notification_id, options_id, check_unread, channel, due_at)
    SELECT n.notification_id, numbered.id, c.check_unread, c.channel,
           now() + make_interval(secs => c.delay)
    FROM unnest(string_to_array($2, ',')::bigint[], string_to_array($3, ',')::int[])
        AS n(notification_id, k)
    JOIN numbered USING (k)
    JOIN unnest($4::bool[], $5::float8[], $6::text[]) WITH ORDINALITY
        AS c(check_unread, delay, channel, k) USING (k)
    RETURNING 1
)
SELECT count(*) FROM j
"""


@store_edge
async def add(conn: asyncpg.Connection, owed: Sequence[OwedPush]) -> int:
    """Insert the jobs of ``owed`` in the caller's transaction; returns how many.

    Identity columns are allocated in row order within one statement, so the
    k-th options row inserted gets the k-th smallest id.
    """
    owed = [o for o in owed if o.notification_ids]
    if not owed:
        return 0
    # the per-job lists as joined text: asyncpg encodes an array element by element
    ids = ",".join([str(i) for o in owed for i in o.notification_ids])
    which = ",".join([str(k) for k, o in enumerate(owed, 1) for _ in o.notification_ids])
    n = await conn.fetchval(
        _ADD, [orjson.dumps(o.options).decode() for o in owed], ids, which,
        [o.check_unread for o in owed], [float(o.delay) for o in owed], [o.channel for o in owed])
    await conn.execute("SELECT pg_notify($1, '')", WAKE_CHANNEL)
    return int(n)


#: The time of a statement: its unix-seconds parameter $1 if given, else the database's.
NOW = "coalesce(to_timestamp($1::float8), now())"

_CLAIM = f"""
WITH c AS (
    SELECT id, leased_by FROM tidings_push_jobs
    WHERE NOT dead AND channel = $5 AND due_at <= {NOW}
      AND (lease_until IS NULL OR lease_until < {NOW})
    ORDER BY due_at LIMIT $2 FOR UPDATE SKIP LOCKED
), u AS (
    UPDATE tidings_push_jobs j
    SET lease_until = {NOW} + make_interval(secs => $3::float8), leased_by = $4
    FROM c WHERE j.id = c.id
    RETURNING j.id, j.notification_id, j.options_id, j.attempt, j.devices, j.check_unread,
              j.digest_ids, c.leased_by IS NOT NULL AS taken_over
)
SELECT u.id, u.options_id, u.attempt, u.devices, u.check_unread, u.taken_over,
       u.notification_id, u.digest_ids,
       n.status = 'ACTIVE' AND n.read_at IS NULL AS unread, o.options,
       n.uid::text, n.user_id, n.seq, n.message, n.title, n.type, n.data
FROM u JOIN tidings_notifications n ON n.id = u.notification_id
JOIN tidings_push_options o ON o.id = u.options_id
ORDER BY u.id
"""


@dataclass(frozen=True, slots=True)
class Claimed:
    """A leased job: its row, and the content to push (None when its options are not valid)."""

    id: int
    attempt: int
    devices: list[int] | None  # a retry: only these device ids
    check_unread: bool
    taken_over: bool  # its last lease ran out: some devices may have their outcome already
    unread: bool  # the notification is ACTIVE and unread now
    job: PushJob | None
    invalid: str | None = None
    notification_id: int = 0
    digest_ids: list[int] | None = None  # a digest: the notifications it covers


def _claimed(r: asyncpg.Record, parsed: dict[int, PushOptions | str]) -> Claimed:
    """The claimed row ``r``; ``parsed`` caches each options row's parse (or its error)."""
    push = parsed.get(r["options_id"])
    if push is None:
        try:
            push = push_options(r["options"])
        except ValueError as exc:
            push = str(exc)
        parsed[r["options_id"]] = push
    if isinstance(push, str):
        push, invalid = None, push
    else:
        invalid = None
    job = None if push is None else PushJob(
        uid=r["uid"], user_id=r["user_id"], message=r["message"], seq=r["seq"], title=r["title"],
        type=r["type"], data=r["data"], push=push)
    return Claimed(r["id"], r["attempt"], r["devices"], r["check_unread"], r["taken_over"],
                   r["unread"], job, invalid, r["notification_id"], r["digest_ids"])


@store_edge
async def claim(pool: Pool, worker: str, limit: int, lease: float,
                now: float | None = None, channel: str = "push") -> list[Claimed]:
    """Lease up to ``limit`` due jobs of ``channel`` to ``worker`` for ``lease`` seconds,
    oldest due first."""
    rows = await pool.fetch(_CLAIM, now, limit, lease, worker, channel)
    parsed: dict[int, PushOptions | str] = {}
    return [_claimed(r, parsed) for r in rows]


@store_edge
async def renew(pool: Pool, worker: str, ids: Sequence[int], lease: float,
                now: float | None = None) -> set[int]:
    """Extend ``worker``'s leases of ``ids``; returns the ids it still holds."""
    if not ids:
        return set()
    rows = await pool.fetch(
        f"UPDATE tidings_push_jobs SET lease_until = {NOW} + make_interval(secs => $2::float8)"
        " WHERE id = ANY($3::bigint[]) AND leased_by = $4 RETURNING id",
        now, lease, list(ids), worker)
    return {r[0] for r in rows}
