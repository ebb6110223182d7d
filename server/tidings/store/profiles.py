"""Users' profiles: the SQL of ``tidings_profiles`` (schema 5).

A profile is the producer's record of a user: e-mail address, name, locale and
IANA timezone, plus the state of the address (``ok`` or ``bouncing``, with
the answer and time that marked it; the e-mail channel is what marks it). Replacing
a profile with a new address clears the bounce state. Every function raises
only :class:`~tidings.core.errors.StoreUnavailable` or
:class:`~tidings.core.errors.StoreError`.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from .db import Connection, Pool, Row
from .errors import store_edge

_COLUMNS = ("user_id, email, name, locale, timezone, email_status, email_bounce,"
            " email_bounced_at, created_at, updated_at")


@store_edge
async def put(pool: Pool, user_id: str, email: str | None, name: str | None,
              locale: str | None, timezone: str | None) -> tuple[Row, bool]:
    """Create or replace a profile: (the row, whether it is new)."""
    row = await pool.fetchrow(
        f"""INSERT INTO tidings_profiles AS p (user_id, email, name, locale, timezone)
        VALUES ($1, $2, $3, $4, $5)
        ON CONFLICT (user_id) DO UPDATE SET
            email = EXCLUDED.email, name = EXCLUDED.name, locale = EXCLUDED.locale,
            timezone = EXCLUDED.timezone, updated_at = now(),
            email_status = CASE WHEN p.email IS NOT DISTINCT FROM EXCLUDED.email
                                THEN p.email_status ELSE 'ok' END,
            email_bounce = CASE WHEN p.email IS NOT DISTINCT FROM EXCLUDED.email
                                THEN p.email_bounce END,
            email_bounced_at = CASE WHEN p.email IS NOT DISTINCT FROM EXCLUDED.email
                                    THEN p.email_bounced_at END
        RETURNING {_COLUMNS}, xmax = 0 AS created""",
        user_id, email, name, locale, timezone)
    return row, row["created"]


@store_edge
async def get(pool: Pool, user_id: str) -> Row | None:
    return await pool.fetchrow(f"SELECT {_COLUMNS} FROM tidings_profiles WHERE user_id = $1",
                               user_id)


@store_edge
async def delete(pool: Pool, user_id: str) -> bool:
    status = await pool.execute("DELETE FROM tidings_profiles WHERE user_id = $1", user_id)
    return status.endswith(" 1")


@store_edge
async def addresses(pool: Pool, user_ids: Sequence[str]) -> dict[str, Row]:
    """The e-mail state of each user among ``user_ids`` who has a profile:
    ``email``, ``name``, ``email_status``, ``email_bounce``."""
    rows = await pool.fetch(
        "SELECT user_id, email, name, email_status, email_bounce FROM tidings_profiles"
        " WHERE user_id = ANY($1::text[])", list(set(user_ids)))
    return {r["user_id"]: r for r in rows}


async def mark_bouncing(conn: Connection, bounces: Sequence[tuple[str, str, str]],
                        now: float | None = None) -> None:
    """Mark each (user, address, answer) profile's address bouncing, in the caller's
    transaction; a profile whose address changed since the e-mail was sent is left alone."""
    if bounces:
        await conn.execute(
            "UPDATE tidings_profiles p SET email_status = 'bouncing', email_bounce = b.detail,"
            " email_bounced_at = coalesce(to_timestamp($4::float8), now())"
            " FROM unnest($1::text[], $2::text[], $3::text[]) AS b(user_id, email, detail)"
            " WHERE p.user_id = b.user_id AND p.email = b.email",
            [b[0] for b in bounces], [b[1] for b in bounces], [b[2] for b in bounces], now)


@store_edge
async def timezones(pool: Pool, user_ids: Sequence[str]) -> dict[str, str]:
    """The timezone of each user among ``user_ids`` whose profile names one."""
    rows = await pool.fetch(
        "SELECT user_id, timezone FROM tidings_profiles"
        " WHERE user_id = ANY($1::text[]) AND timezone IS NOT NULL", list(set(user_ids)))
    return {r[0]: r[1] for r in rows}


def as_dict(row: Row) -> dict[str, Any]:
    """A profile as the API shows it."""
    bounced = row["email_bounced_at"]
    return {
        "user_id": row["user_id"], "email": row["email"], "name": row["name"],
        "locale": row["locale"], "timezone": row["timezone"],
        "email_status": row["email_status"],
        "email_bounce": None if row["email_status"] == "ok" else {
            "detail": row["email_bounce"], "at": bounced.isoformat() if bounced else None},
        "created_at": row["created_at"].isoformat(), "updated_at": row["updated_at"].isoformat(),
    }
