"""The outbox: publishes committed but not yet on the bus.

The publishing statement inserts one row per publish (in ``inbox.publish``);
the publisher deletes it once the event is on Redis. Rows left behind (Redis
was down, the node died) are claimed by the relay with ``SKIP LOCKED``, so one
node at a time handles each, and deleted in the claiming transaction after
their event is on the bus.
"""

from __future__ import annotations

from collections.abc import Sequence

import asyncpg


async def delete(conn: asyncpg.Connection | asyncpg.Pool, ids: Sequence[int]) -> None:
    await conn.execute("DELETE FROM tidings_outbox WHERE id = ANY($1::bigint[])", list(ids))


async def claim_stale(conn: asyncpg.Connection, older_than: float,
                      limit: int) -> list[asyncpg.Record]:
    """Lock up to ``limit`` rows older than ``older_than`` seconds; call inside a transaction."""
    return await conn.fetch(
        "SELECT id, notification_ids, push FROM tidings_outbox"
        " WHERE created_at < now() - make_interval(secs => $1)"
        " ORDER BY id LIMIT $2 FOR UPDATE SKIP LOCKED",
        older_than, limit,
    )
