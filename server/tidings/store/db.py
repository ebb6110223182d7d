"""Connection pools: JSON columns decode with orjson, and every pool is set up alike."""

from __future__ import annotations

import asyncpg
import orjson


async def _init(conn: asyncpg.Connection) -> None:
    for name in ("json", "jsonb"):
        await conn.set_type_codec(
            name, schema="pg_catalog",
            encoder=lambda v: orjson.dumps(v).decode(), decoder=orjson.loads,
        )


async def create_pool(dsn: str, *, min_size: int = 2, max_size: int = 10) -> asyncpg.Pool:
    """A pool whose connections encode and decode json/jsonb as Python values."""
    # reset=None: no reset query on every release. Tidings sets no session state
    # and closes every transaction and advisory lock itself.
    return await asyncpg.create_pool(
        dsn, min_size=min_size, max_size=max_size, init=_init, command_timeout=30, reset=None,
    )
