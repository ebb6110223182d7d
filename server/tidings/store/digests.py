"""Digests and held sends: the SQL that turns due jobs into one digest per user, type and
channel, and reads what a digest or a template needs (schema 5).

A digest is a job row like any other (same queue, lease, retries and crash
contract) whose ``digest_ids`` lists the notifications it covers, due at the
end of its window. :func:`hold` runs in the settling transaction of the worker
that decided to hold some jobs: for each (user, type, channel) it adds their
notifications to the open digest (one not leased: not being sent), else makes
the first of them the digest, due after the window; the other held jobs are
deleted. A transaction-scoped advisory lock per (user, type, channel) keeps
two workers from opening two digests at once. A digest being sent takes no
more notifications: those held meanwhile open the next one.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import asyncpg

from .errors import store_edge
from .push_jobs import NOW, Pool


@dataclass(frozen=True, slots=True)
class Hold:
    """A job held for a digest: its notification, the digest it belongs to, the window."""

    job_id: int
    notification_id: int
    user_id: str
    type: str
    channel: str
    window: float


async def hold(conn: asyncpg.Connection, worker: str, holds: Sequence[Hold],
               now: float | None) -> None:
    """Add ``holds`` (jobs leased to ``worker``) to their digests, in the caller's
    transaction (see the module)."""
    groups: dict[tuple[str, str, str], list[Hold]] = {}
    for h in holds:
        groups.setdefault((h.user_id, h.type, h.channel), []).append(h)
    for key in sorted(groups):
        group = groups[key]
        user_id, type_, channel = key
        ids = [h.notification_id for h in group]
        await conn.execute("SELECT pg_advisory_xact_lock(hashtextextended($1, 0))",
                           "\x1f".join(("tidings-digest", *key)))
        opened = await conn.fetchval(
            "UPDATE tidings_push_jobs SET digest_ids = digest_ids || $4::bigint[]"
            " WHERE id = (SELECT id FROM tidings_push_jobs WHERE digest_user = $1"
            " AND digest_type = $2 AND channel = $3 AND digest_ids IS NOT NULL AND NOT dead"
            " AND lease_until IS NULL ORDER BY id LIMIT 1) AND lease_until IS NULL"
            " RETURNING id", user_id, type_, channel, ids)
        rest = [h.job_id for h in group]
        if opened is None:
            first = group[0]
            await conn.execute(
                f"UPDATE tidings_push_jobs SET digest_user = $2, digest_type = $3,"
                f" digest_ids = $4::bigint[], due_at = {NOW} + make_interval(secs => $5),"
                " lease_until = NULL, leased_by = NULL, devices = NULL, check_unread = false"
                " WHERE id = $6 AND leased_by = $7",
                now, user_id, type_, ids, first.window, first.job_id, worker)
            rest = rest[1:]
        if rest:
            await conn.execute(
                "DELETE FROM tidings_push_jobs WHERE id = ANY($1::bigint[]) AND leased_by = $2",
                rest, worker)


_CONTENT = ("id, uid::text AS uid, user_id, seq, message, title, type, data, created_by,"
            " model, instance, method, changed_data, custom_info,"
            " status = 'ACTIVE' AND read_at IS NULL AS unread")


@store_edge
async def contents(pool: Pool, ids: Sequence[int]) -> dict[int, dict[str, Any]]:
    """The content of the notifications ``ids`` (what templates and digests use), with
    ``unread`` (ACTIVE and not read now), by id, in seq order."""
    if not ids:
        return {}
    rows = await pool.fetch(
        f"SELECT {_CONTENT} FROM tidings_notifications WHERE id = ANY($1::bigint[])"
        " ORDER BY user_id, seq", list(set(ids)))
    return {r["id"]: dict(r) for r in rows}
