"""Fresh databases for a sitting: the PostgreSQL database dropped and created, the Redis db flushed.

Only loopback servers are touched. The PostgreSQL URL names the database to
recreate (``postgresql://postgres@127.0.0.1:5432/tidings_bench``: the server's
``postgres`` database is used to drop and create it; the names ``postgres``,
``template0`` and ``template1`` are refused); the Redis URL names the db number to
FLUSHDB. A node started on them migrates the empty database itself.
"""

from __future__ import annotations

from urllib.parse import urlsplit, urlunsplit

import asyncpg
import redis.asyncio as aioredis

from .targets import loopback_only

RESERVED = {"postgres", "template0", "template1"}


def database_name(url: str) -> str:
    name = urlsplit(url).path.lstrip("/")
    if not name or name in RESERVED:
        raise SystemExit(f"name a database of its own to recreate for the runs, not {name!r}: "
                         f"{url}")
    return name


async def recreate_postgres(url: str) -> None:
    """Drop the URL's database (closing its sessions) and create it again, empty."""
    loopback_only(url)
    name = database_name(url)
    parts = urlsplit(url)
    admin = await asyncpg.connect(urlunsplit(parts._replace(path="/postgres")))
    try:
        await admin.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        await admin.execute(f'CREATE DATABASE "{name}"')
    finally:
        await admin.close()


async def flush_redis(url: str) -> None:
    loopback_only(url)
    client = aioredis.Redis.from_url(url)
    try:
        await client.flushdb()
    finally:
        await client.aclose()


async def versions(database_url: str | None, redis_url: str | None) -> dict[str, str | None]:
    """The PostgreSQL and Redis server versions behind the URLs (None where not given)."""
    out: dict[str, str | None] = {"postgresql": None, "redis": None}
    if database_url:
        conn = await asyncpg.connect(database_url)
        try:
            out["postgresql"] = await conn.fetchval("SHOW server_version")
        finally:
            await conn.close()
    if redis_url:
        client = aioredis.Redis.from_url(redis_url)
        try:
            out["redis"] = (await client.info("server"))["redis_version"]
        finally:
            await client.aclose()
    return out
