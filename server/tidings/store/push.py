"""Push SQL: the devices a job goes to, the delivery log, device deactivation.

The delivery log is append-only. A device's final outcome for a notification
('pushed', 'failed', 'deactivated', 'dead', 'throttled') is written at most once
(a unique index; later copies are dropped), and the worker writes it before it
acknowledges the job: a job redelivered after a crash skips those devices.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass, replace
from datetime import UTC, datetime
from typing import Any

import asyncpg

from ..core.push import Device

Conn = asyncpg.Connection | asyncpg.Pool
FINAL = ("pushed", "failed", "deactivated", "dead", "throttled")


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


async def active_devices(conn: Conn, user_id: str, ids: list[int] | None = None) -> list[Device]:
    """The user's active devices (only those in ``ids`` when given), oldest first."""
    rows = await conn.fetch(
        "SELECT id, user_id, platform, token, app_id FROM tidings_devices"
        " WHERE user_id = $1 AND active AND ($2::bigint[] IS NULL OR id = ANY($2))"
        " ORDER BY id",
        user_id, ids,
    )
    return [Device(**r) for r in rows]


async def finished_devices(conn: Conn, uid: str) -> set[int]:
    """Device ids that already have a final outcome for notification ``uid``."""
    rows = await conn.fetch(
        "SELECT device_id FROM tidings_deliveries WHERE notification_uid = $1"
        " AND outcome = ANY($2::text[]) AND device_id IS NOT NULL",
        uid, FINAL,
    )
    return {r["device_id"] for r in rows}


async def still_unread(conn: Conn, uid: str) -> bool:
    """Whether notification ``uid`` exists, is ACTIVE and unread."""
    return bool(await conn.fetchval(
        "SELECT EXISTS (SELECT 1 FROM tidings_notifications"
        " WHERE uid = $1 AND status = 'ACTIVE' AND read_at IS NULL)",
        uid,
    ))


async def record(conn: Conn, records: Iterable[Record]) -> None:
    """Append rows to the delivery log in one statement (a repeated final row is dropped).

    Socket deliveries go through :func:`record_sockets` instead.
    """
    rows = list(records)
    if not rows:
        return
    await conn.execute(
        "INSERT INTO tidings_deliveries"
        " (notification_uid, user_id, channel, outcome, device_id, detail, attempt)"
        " SELECT * FROM unnest($1::uuid[], $2::text[], $3::text[], $4::text[], $5::bigint[],"
        " $6::text[], $7::int[]) ON CONFLICT DO NOTHING",
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


async def deactivate(conn: asyncpg.Pool, device: Device, rec: Record,
                     invalid_since: float | None = None) -> bool:
    """Deactivate a device whose token the provider rejected and log ``rec``, in one transaction.

    With ``invalid_since`` (APNs 410) a device registered again after that time stays
    active, and ``rec`` is logged as 'failed'. Returns whether the device was deactivated.
    """
    since = datetime.fromtimestamp(invalid_since, UTC) if invalid_since else None
    async with conn.acquire() as c, c.transaction():
        status = await c.execute(
            "UPDATE tidings_devices SET active = false, deactivated_reason = $2,"
            " updated_at = now() WHERE id = $1 AND active"
            " AND ($3::timestamptz IS NULL OR updated_at <= $3)",
            device.id, rec.detail, since,
        )
        done = status != "UPDATE 0"
        await record(c, [rec if done else replace(rec, outcome="failed")])
    return done


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
