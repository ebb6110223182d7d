"""Publishes asked for later (``delay``), claimed once due with ``SKIP LOCKED``."""

from __future__ import annotations

from datetime import datetime
from typing import Any

import asyncpg

from .db import Connection, Pool
from .errors import store_edge


@store_edge
async def add(conn: Connection | Pool, request: dict[str, Any],
              due_at: datetime) -> int:
    return await conn.fetchval(
        "INSERT INTO tidings_scheduled (request, due_at) VALUES ($1, $2) RETURNING id",
        request, due_at,
    )


@store_edge
async def claim_due(conn: Connection, limit: int) -> list[asyncpg.Record]:
    """Lock due rows, oldest first; call inside a transaction, delete them in it."""
    return await conn.fetch(
        "SELECT id, request FROM tidings_scheduled WHERE due_at <= now()"
        " ORDER BY due_at, id LIMIT $1 FOR UPDATE SKIP LOCKED",
        limit,
    )


@store_edge
async def delete(conn: Connection, ids: list[int]) -> None:
    await conn.execute("DELETE FROM tidings_scheduled WHERE id = ANY($1::bigint[])", ids)
