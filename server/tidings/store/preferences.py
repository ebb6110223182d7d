"""Users' preference choices: the SQL of ``tidings_preferences`` (schema 5).

One row per user who chose anything, holding only the choices (JSON) and a
version bumped by every change. :func:`change` reads and writes one user's row
under a row lock, so concurrent PATCHes of one user apply one after the other.
Every function raises only :class:`~tidings.core.errors.StoreUnavailable` or
:class:`~tidings.core.errors.StoreError`.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Sequence
from typing import Any

from .db import Pool
from .errors import store_edge


@store_edge
async def get(pool: Pool, user_id: str) -> tuple[dict[str, Any], int]:
    """(the user's choices, their version); no row: ({}, 0)."""
    row = await pool.fetchrow(
        "SELECT choices, version FROM tidings_preferences WHERE user_id = $1", user_id)
    return (row["choices"], row["version"]) if row is not None else ({}, 0)


@store_edge
async def change(pool: Pool, user_id: str,
                 apply: Callable[[dict[str, Any]], Awaitable[dict[str, Any]]]
                 ) -> tuple[dict[str, Any], int]:
    """Replace the user's choices by ``await apply(current)``, in one transaction holding
    the user's row; returns (the new choices, the new version). An exception from
    ``apply`` changes nothing."""
    async with pool.acquire() as conn, conn.transaction():
        await conn.execute(
            "INSERT INTO tidings_preferences (user_id) VALUES ($1) ON CONFLICT DO NOTHING",
            user_id)
        current = await conn.fetchval(
            "SELECT choices FROM tidings_preferences WHERE user_id = $1 FOR UPDATE", user_id)
        new = await apply(current)
        version = await conn.fetchval(
            "UPDATE tidings_preferences SET choices = $2, version = version + 1,"
            " updated_at = now() WHERE user_id = $1 RETURNING version", user_id, new)
    return new, version


@store_edge
async def of_users(pool: Pool, user_ids: Sequence[str]) -> dict[str, dict[str, Any]]:
    """The choices of each user among ``user_ids`` who has any."""
    rows = await pool.fetch(
        "SELECT user_id, choices FROM tidings_preferences WHERE user_id = ANY($1::text[])",
        list(set(user_ids)))
    return {r[0]: r[1] for r in rows}
