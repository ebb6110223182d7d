"""The SQL of the operator's console: the audit log, dead letters, a user's record, push stats.

What may live here: statements that only the console runs (schema 7's
``tidings_admin_audit``, and reads across users that no user endpoint makes).

The users Tidings knows (:func:`known_users`) are those it has seen: with a
per-user state (any notification stored for them), a profile, stored
preferences, or a device (a browser subscription included, active or not).

Contracts:

- An action's audit row is written in the transaction that performs it
  (:func:`requeue`, :func:`discard`), or before it (:func:`audit`, for a send):
  nothing an admin does goes unrecorded.
- :func:`requeue` and :func:`discard` touch dead letters only (``dead``); other ids
  are reported as not found. A requeued job is due now, at attempt 1, unleased,
  and the push workers are woken.
- A send's audit row may gain its outcome when the send is done
  (:func:`audit_outcome`: keys added to ``detail``); nothing else changes a row.
- Times leave as ISO 8601 text. Every function raises only
  :class:`~tidings.core.errors.StoreUnavailable` or
  :class:`~tidings.core.errors.StoreError`.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from typing import Any

from .db import Connection, Pool
from .errors import store_edge
from .push_jobs import WAKE_CHANNEL

#: Outcomes of the delivery log that are errors of a device (its "last error").
ERROR_OUTCOMES = ("failed", "deactivated", "retry", "dead")


def _iso(at: datetime | None) -> str | None:
    return None if at is None else at.isoformat()


async def _audit(conn: Connection | Pool, admin: str, action: str, target: str | None,
                 detail: dict[str, Any]) -> int:
    return await conn.fetchval(
        "INSERT INTO tidings_admin_audit (admin, action, target, detail)"
        " VALUES ($1, $2, $3, $4) RETURNING id", admin, action, target, detail)


@store_edge
async def audit(pool: Pool, admin: str, action: str, target: str | None,
                detail: dict[str, Any]) -> int:
    """Write one audit row (``admin`` is a key id, never a key); returns its id."""
    return await _audit(pool, admin, action, target, detail)


@store_edge
async def audit_outcome(pool: Pool, audit_id: int, outcome: dict[str, Any]) -> None:
    """Add ``outcome``'s keys to the ``detail`` of the audit row ``audit_id``."""
    await pool.execute("UPDATE tidings_admin_audit SET detail = detail || $2::jsonb WHERE id = $1",
                       audit_id, outcome)


#: The tables whose rows make a user known to Tidings.
KNOWN_FROM = ("tidings_user_state", "tidings_profiles", "tidings_preferences", "tidings_devices")


@store_edge
async def known_users(pool: Pool, after: str, limit: int) -> list[tuple[str, Any]]:
    """Up to ``limit`` users Tidings knows whose ids sort after ``after``, in id order,
    each with their stored preference choices (None: they chose nothing)."""
    branches = " UNION ".join(
        f"(SELECT DISTINCT user_id FROM {table} WHERE user_id > $1 ORDER BY user_id LIMIT $2)"
        for table in KNOWN_FROM)
    rows = await pool.fetch(
        f"SELECT k.user_id, p.choices FROM ({branches}) k"
        " LEFT JOIN tidings_preferences p USING (user_id) ORDER BY k.user_id LIMIT $2",
        after, limit)
    return [(r[0], r[1]) for r in rows]


@store_edge
async def audit_log(pool: Pool, limit: int, before: int | None) -> list[dict[str, Any]]:
    """Audit rows newest first, ids below ``before`` when given."""
    rows = await pool.fetch(
        "SELECT id, admin, action, target, detail, created_at FROM tidings_admin_audit"
        " WHERE $2::bigint IS NULL OR id < $2 ORDER BY id DESC LIMIT $1", limit, before)
    return [{"id": r["id"], "admin": r["admin"], "action": r["action"], "target": r["target"],
             "detail": r["detail"], "at": _iso(r["created_at"])} for r in rows]


@store_edge
async def dead_letters(pool: Pool, limit: int, before: int | None) -> list[dict[str, Any]]:
    """Dead push jobs newest first (ids below ``before`` when given), with their notification."""
    rows = await pool.fetch(
        "SELECT j.id, n.uid::text AS uid, n.user_id, n.title, left(n.message, 200) AS message,"
        " j.attempt, j.devices, j.dead_reason, j.created_at, j.due_at"
        " FROM tidings_push_jobs j JOIN tidings_notifications n ON n.id = j.notification_id"
        " WHERE j.dead AND ($2::bigint IS NULL OR j.id < $2) ORDER BY j.id DESC LIMIT $1",
        limit, before)
    return [{"id": r["id"], "uid": r["uid"], "user_id": r["user_id"], "title": r["title"],
             "message": r["message"], "attempt": r["attempt"], "devices": r["devices"],
             "reason": r["dead_reason"], "created_at": _iso(r["created_at"]),
             "last_due_at": _iso(r["due_at"])} for r in rows]


@store_edge
async def requeue(pool: Pool, admin: str, ids: Sequence[int]) -> list[int]:
    """Make the dead letters among ``ids`` due now at attempt 1, with their audit row;
    returns the ids requeued."""
    async with pool.acquire() as conn, conn.transaction():
        done = [r[0] for r in await conn.fetch(
            "UPDATE tidings_push_jobs SET dead = false, dead_reason = NULL, attempt = 1,"
            " due_at = now(), lease_until = NULL, leased_by = NULL"
            " WHERE id = ANY($1::bigint[]) AND dead RETURNING id", list(ids))]
        if done:
            await _audit(conn, admin, "requeue", None, {"jobs": sorted(done)})
            await conn.execute("SELECT pg_notify($1, '')", WAKE_CHANNEL)
    return sorted(done)


@store_edge
async def discard(pool: Pool, admin: str, ids: Sequence[int]) -> list[int]:
    """Delete the dead letters among ``ids``, with their audit row (which names each job's
    notification); returns the ids discarded. Options rows left unused are swept by the
    push workers."""
    async with pool.acquire() as conn, conn.transaction():
        rows = await conn.fetch(
            "WITH d AS (DELETE FROM tidings_push_jobs WHERE id = ANY($1::bigint[]) AND dead"
            " RETURNING id, notification_id)"
            " SELECT d.id, n.uid::text FROM d JOIN tidings_notifications n"
            " ON n.id = d.notification_id ORDER BY d.id", list(ids))
        if rows:
            await _audit(conn, admin, "discard", None,
                         {"jobs": [r[0] for r in rows], "uids": [r[1] for r in rows]})
    return [r[0] for r in rows]


@store_edge
async def user_record(pool: Pool, user_id: str, latest: int) -> dict[str, Any]:
    """One user's counts, ``latest`` newest notifications and devices (each with its last
    push and last error from the delivery log)."""
    async with pool.acquire() as conn:
        state = await conn.fetchrow(
            "SELECT last_seq, total_count, unread_count FROM tidings_user_state"
            " WHERE user_id = $1", user_id)
        notes = await conn.fetch(
            "SELECT uid::text, seq, type, title, left(message, 200) AS message, status,"
            " read_at IS NOT NULL AS is_read, created_at FROM tidings_notifications"
            " WHERE user_id = $1 ORDER BY seq DESC LIMIT $2", user_id, latest)
        devices = await conn.fetch(
            "SELECT d.id, d.platform, d.token, d.app_id, d.name, d.active,"
            " d.deactivated_reason, d.created_at, d.updated_at,"
            " p.created_at AS pushed_at, e.outcome AS error_outcome, e.detail AS error_detail,"
            " e.created_at AS error_at"
            " FROM tidings_devices d"
            " LEFT JOIN LATERAL (SELECT created_at FROM tidings_deliveries"
            "   WHERE device_id = d.id AND outcome = 'pushed' ORDER BY id DESC LIMIT 1) p ON true"
            " LEFT JOIN LATERAL (SELECT outcome, detail, created_at FROM tidings_deliveries"
            "   WHERE device_id = d.id AND outcome = ANY($2::text[]) ORDER BY id DESC LIMIT 1)"
            "   e ON true"
            " WHERE d.user_id = $1 ORDER BY d.id", user_id, ERROR_OUTCOMES)
    total, unread = (state[1], state[2]) if state else (0, 0)
    return {
        "counts": {"total_notifications": total, "read_notifications": total - unread,
                   "unread_notifications": unread, "last_seq": state[0] if state else 0},
        "notifications": [{"uid": r["uid"], "seq": r["seq"], "type": r["type"],
                           "title": r["title"], "message": r["message"], "status": r["status"],
                           "is_read": r["is_read"], "created_at": _iso(r["created_at"])}
                          for r in notes],
        "devices": [{
            "id": r["id"], "platform": r["platform"], "token": r["token"],
            "app_id": r["app_id"], "name": r["name"], "active": r["active"],
            "deactivated_reason": r["deactivated_reason"],
            "created_at": _iso(r["created_at"]), "updated_at": _iso(r["updated_at"]),
            "last_push_at": _iso(r["pushed_at"]),
            "last_error": None if r["error_outcome"] is None else {
                "outcome": r["error_outcome"], "detail": r["error_detail"],
                "at": _iso(r["error_at"])},
        } for r in devices],
    }


@store_edge
async def push_outcomes(pool: Pool, seconds: float) -> list[tuple[str, str | None, str, int]]:
    """(device platform, device app_id, outcome, count) of the push outcomes logged in the
    last ``seconds`` (socket rows and 'sending' rows left out)."""
    rows = await pool.fetch(
        "SELECT d.platform, d.app_id, l.outcome, count(*) FROM tidings_deliveries l"
        " JOIN tidings_devices d ON d.id = l.device_id"
        " WHERE l.created_at > now() - make_interval(secs => $1::float8)"
        " AND l.channel <> 'socket' AND l.outcome <> 'sending'"
        " GROUP BY 1, 2, 3", seconds)
    return [(r[0], r[1], r[2], r[3]) for r in rows]
