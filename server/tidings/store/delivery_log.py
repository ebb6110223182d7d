"""Push SQL of the delivery log and the devices: who a job goes to, what happened.

What may live here: the SQL of ``tidings_deliveries`` and the device lookups and
deactivations of the push worker (the jobs themselves are ``push_jobs``).

The delivery log is append-only. Each push attempt is logged twice: a
'sending' row before the send, then its outcome. A device's final outcome for a
notification ('pushed', 'failed', 'deactivated', 'throttled') is written at
most once (a unique index; later copies are dropped): a job taken over after a
crash skips the devices that have one (:func:`finished`). 'dead' is not final:
a dead letter may be requeued (schema 7), and its next outcome is logged.
Every function raises only :class:`~tidings.core.errors.StoreUnavailable` or
:class:`~tidings.core.errors.StoreError`.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass, replace
from datetime import UTC, datetime
from typing import Any

import asyncpg

from ..core.push import Device
from .errors import store_edge

Conn = asyncpg.Connection | asyncpg.Pool
FINAL = ("pushed", "failed", "deactivated", "throttled")


@dataclass(frozen=True, slots=True)
class Record:
    """One row of the delivery log."""

    uid: str
    user_id: str
    channel: str
    outcome: str
    device_id: int | None = None
    detail: str | None = None
    attempt: int = 1


@dataclass(frozen=True, slots=True)
class Invalid:
    """A device whose token the provider rejected, with the row to log if it is deactivated."""

    record: Record
    since: float | None = None  # APNs 410: unix time the token stopped being valid


@store_edge
async def active_devices(conn: Conn, user_ids: Sequence[str]) -> dict[str, list[Device]]:
    """The active devices of each user (oldest first); users with none are absent."""
    rows = await conn.fetch(
        "SELECT id, user_id, platform, token, app_id, endpoint, p256dh, auth FROM tidings_devices"
        " WHERE user_id = ANY($1::text[]) AND active ORDER BY id",
        list(set(user_ids)),
    )
    out: dict[str, list[Device]] = {}
    for r in rows:
        out.setdefault(r["user_id"], []).append(Device(*r))
    return out


@store_edge
async def finished(conn: Conn, uids: Sequence[str]) -> set[tuple[str, int]]:
    """The (uid, device id) pairs that already have a final outcome."""
    if not uids:
        return set()
    rows = await conn.fetch(
        "SELECT notification_uid::text, device_id FROM tidings_deliveries"
        " WHERE notification_uid = ANY($1::uuid[]) AND outcome = ANY($2::text[])"
        " AND device_id IS NOT NULL",
        list(uids), FINAL,
    )
    return {(r[0], r[1]) for r in rows}


@store_edge
async def record(conn: Conn, records: Iterable[Record]) -> None:
    """Append rows to the delivery log in one statement (a repeated final row is dropped;
    a device deleted meanwhile is logged as none).

    Socket deliveries go through :func:`record_sockets` instead.
    """
    rows = list(records)
    if not rows:
        return
    await conn.execute(
        "INSERT INTO tidings_deliveries"
        " (notification_uid, user_id, channel, outcome, device_id, detail, attempt)"
        " SELECT r.uid, r.user_id, r.channel, r.outcome, d.id, r.detail, r.attempt"
        " FROM unnest($1::uuid[], $2::text[], $3::text[], $4::text[], $5::bigint[],"
        " $6::text[], $7::int[]) WITH ORDINALITY"
        " AS r(uid, user_id, channel, outcome, device_id, detail, attempt, k)"
        " LEFT JOIN tidings_devices d ON d.id = r.device_id ORDER BY r.k"
        " ON CONFLICT DO NOTHING",
        [r.uid for r in rows], [r.user_id for r in rows], [r.channel for r in rows],
        [r.outcome for r in rows], [r.device_id for r in rows], [r.detail for r in rows],
        [r.attempt for r in rows],
    )


async def record_sockets(conn: asyncpg.Connection,
                         delivered: Sequence[tuple[str, str]]) -> None:
    """Log (uid, user_id) notifications as delivered to a socket ('socket', 'delivered').

    By COPY, the cheapest way into the table: these rows are never final, so no
    conflict can arise. ``conn`` is a connection (COPY needs one).
    """
    if delivered:
        await conn.copy_records_to_table(
            "tidings_deliveries", columns=("notification_uid", "user_id", "channel", "outcome"),
            records=[(uid, user_id, "socket", "delivered") for uid, user_id in delivered],
        )


async def record_acks(conn: Conn, user_ids: list[str], seqs: list[int]) -> None:
    """Log that sockets acknowledged these (user, seq) notifications ('socket', 'acked')."""
    await conn.execute(
        "INSERT INTO tidings_deliveries (notification_uid, user_id, channel, outcome)"
        " SELECT n.uid, n.user_id, 'socket', 'acked'"
        " FROM unnest($1::text[], $2::bigint[]) AS a(user_id, seq)"
        " JOIN tidings_notifications n USING (user_id, seq)",
        user_ids, seqs,
    )


async def deactivate(conn: asyncpg.Connection, invalid: Sequence[Invalid]) -> list[Record]:
    """Deactivate the devices of ``invalid``; the rows to log, in the caller's transaction.

    A device registered again after its token's ``since`` stays active and its row
    becomes 'failed'; so does a device already inactive.
    """
    if not invalid:
        return []
    done = {r[0] for r in await conn.fetch(
        "UPDATE tidings_devices d SET active = false, deactivated_reason = u.reason,"
        " updated_at = now() FROM unnest($1::bigint[], $2::text[], $3::timestamptz[])"
        " AS u(id, reason, since)"
        " WHERE d.id = u.id AND d.active AND (u.since IS NULL OR d.updated_at <= u.since)"
        " RETURNING d.id",
        [i.record.device_id for i in invalid], [i.record.detail for i in invalid],
        [datetime.fromtimestamp(i.since, UTC) if i.since else None for i in invalid])}
    return [i.record if i.record.device_id in done else replace(i.record, outcome="failed")
            for i in invalid]


@store_edge
async def deliveries(conn: Conn, uid: str) -> list[dict[str, Any]]:
    """The delivery log of one recipient's notification, oldest first, for the producer API:
    ``{"channel", "outcome", "device": {"id", "platform", "token", "app_id"} | None,
    "detail", "attempt", "at"}``."""
    rows = await conn.fetch(
        "SELECT l.channel, l.outcome, l.detail, l.attempt, l.created_at, l.device_id,"
        " d.platform, d.token, d.app_id"
        " FROM tidings_deliveries l LEFT JOIN tidings_devices d ON d.id = l.device_id"
        " WHERE l.notification_uid = $1 ORDER BY l.id",
        uid,
    )
    return [
        {
            "channel": r["channel"],
            "outcome": r["outcome"],
            "device": None if r["device_id"] is None else {
                "id": r["device_id"], "platform": r["platform"], "token": r["token"],
                "app_id": r["app_id"]},
            "detail": r["detail"],
            "attempt": r["attempt"],
            "at": r["created_at"].isoformat(),
        }
        for r in rows
    ]
