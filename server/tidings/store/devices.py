"""Push devices: one row per (platform, token), owned by exactly one user.

Every statement but :func:`register` is scoped by ``user_id``, so another
user's device is never read or changed. Registering a token that another user
held moves it to the caller (the phone now belongs to someone else's login)
as a new device: nothing of the previous owner's row (name, app, creation
time) survives the move. Every function raises only the store edge's errors
(:class:`~tidings.core.errors.StoreUnavailable`, :class:`~tidings.core.errors.StoreError`).
"""

from __future__ import annotations

from typing import Any

import asyncpg

from .errors import store_edge

_COLUMNS = ("token, platform, app_id, name, active, deactivated_reason, created_at, updated_at,"
            " endpoint")


@store_edge
async def register(pool: asyncpg.Pool, user_id: str, platform: str, token: str,
                   app_id: str | None, name: str | None, active: bool = True,
                   webpush: tuple[str, str, str] | None = None) -> tuple[asyncpg.Record, bool]:
    """Create, reactivate or take over the caller's device in one transaction.

    Returns (the device as stored, whether it is new for this user). ``active``
    false registers it switched off (``deactivated_reason`` ``user``). ``webpush``
    is a subscription's (endpoint, p256dh, auth); registering it again stores its keys.
    """
    endpoint, p256dh, auth = webpush or (None, None, None)
    async with pool.acquire() as conn, conn.transaction():
        prev = await conn.fetchval(
            "SELECT user_id FROM tidings_devices WHERE platform = $1 AND token = $2 FOR UPDATE",
            platform, token,
        )
        row = await conn.fetchrow(
            f"""INSERT INTO tidings_devices AS d
                (user_id, platform, token, app_id, name, endpoint, p256dh, auth)
            VALUES ($1, $2, $3, $4, $5, $6, $7, $8)
            ON CONFLICT (platform, token) DO UPDATE SET
                user_id = EXCLUDED.user_id, endpoint = EXCLUDED.endpoint,
                p256dh = EXCLUDED.p256dh, auth = EXCLUDED.auth,
                app_id = CASE WHEN d.user_id = EXCLUDED.user_id
                              THEN coalesce(EXCLUDED.app_id, d.app_id) ELSE EXCLUDED.app_id END,
                name = CASE WHEN d.user_id = EXCLUDED.user_id
                            THEN coalesce(EXCLUDED.name, d.name) ELSE EXCLUDED.name END,
                created_at = CASE WHEN d.user_id = EXCLUDED.user_id
                                  THEN d.created_at ELSE now() END,
                active = true, deactivated_reason = NULL, updated_at = now()
            RETURNING {_COLUMNS}""",
            user_id, platform, token, app_id, name, endpoint, p256dh, auth,
        )
        if not active:
            row = await update(conn, user_id, token, {"active": False})
    return row, prev != user_id


@store_edge
async def get(conn: asyncpg.Connection | asyncpg.Pool, user_id: str,
              token: str) -> asyncpg.Record | None:
    return await conn.fetchrow(
        f"SELECT {_COLUMNS} FROM tidings_devices WHERE user_id = $1 AND token = $2"
        " ORDER BY platform LIMIT 1",
        user_id, token,
    )


@store_edge
async def list_for(conn: asyncpg.Connection | asyncpg.Pool, user_id: str) -> list[asyncpg.Record]:
    return await conn.fetch(
        f"SELECT {_COLUMNS} FROM tidings_devices WHERE user_id = $1 ORDER BY created_at, token",
        user_id,
    )


@store_edge
async def update(conn: asyncpg.Connection | asyncpg.Pool, user_id: str, token: str,
                 changes: dict[str, Any]) -> asyncpg.Record | None:
    """Set ``app_id``, ``name`` and/or ``active`` on the caller's device; None if not theirs."""
    allowed = {k: v for k, v in changes.items() if k in ("app_id", "name", "active")}
    sets = [f"{k} = ${i}" for i, k in enumerate(allowed, start=3)]
    if "active" in allowed:
        sets.append("deactivated_reason = CASE WHEN active THEN NULL ELSE 'user' END")
    sets.append("updated_at = now()")
    return await conn.fetchrow(
        f"UPDATE tidings_devices SET {', '.join(sets)}"
        f" WHERE user_id = $1 AND token = $2 RETURNING {_COLUMNS}",
        user_id, token, *allowed.values(),
    )


@store_edge
async def delete(conn: asyncpg.Connection | asyncpg.Pool, user_id: str, token: str) -> bool:
    status = await conn.execute(
        "DELETE FROM tidings_devices WHERE user_id = $1 AND token = $2", user_id, token)
    return status != "DELETE 0"
