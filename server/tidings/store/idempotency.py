"""Idempotency keys of producer publishes: same key and body, same answer, one copy.

:func:`claim` inserts the key inside the publishing transaction. A second
request with that key waits on the row lock until the first commits, then
reads the first one's stored answer; if the first rolled back, it proceeds.
"""

from __future__ import annotations

from typing import Any

import asyncpg

from .db import Connection
from .errors import store_edge


@store_edge
async def claim(conn: Connection, key: str,
                request_hash: str) -> asyncpg.Record | None:
    """None if this request owns the key now; else the earlier (hash, status, response)."""
    inserted = await conn.fetchval(
        "INSERT INTO tidings_idempotency (key, request_hash) VALUES ($1, $2)"
        " ON CONFLICT (key) DO NOTHING RETURNING true",
        key, request_hash,
    )
    if inserted:
        return None
    return await conn.fetchrow(
        "SELECT request_hash, status, response FROM tidings_idempotency WHERE key = $1", key)


@store_edge
async def finish(conn: Connection, key: str, status: int, response: Any) -> None:
    await conn.execute(
        "UPDATE tidings_idempotency SET status = $2, response = $3 WHERE key = $1",
        key, status, response,
    )
