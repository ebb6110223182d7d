"""Shared fixtures: real PostgreSQL and Redis, and Tidings nodes on real sockets.

With ``TIDINGS_TEST_DATABASE_URL`` / ``TIDINGS_TEST_REDIS_URL`` set, the suite
uses those servers (a fresh database is created on the PostgreSQL one, and
the Redis database is flushed); unset, it starts the embedded PostgreSQL and
Redis in a temporary folder, exactly as ``tidings serve`` would.
"""

from __future__ import annotations

import os
from collections.abc import AsyncIterator, Iterator

import asyncpg
import pytest
import redis.asyncio as aioredis
from aiohttp import ClientSession

from tidings import config
from tidings.embedded import Embedded, start_redis, stop_process
from tidings.store import db, migrate

from helpers import ADMIN_KEY, API_KEY, JWT_SECRET, Node, scratch_database, serve_node


@pytest.fixture(scope="session")
async def database_url(tmp_path_factory: pytest.TempPathFactory) -> AsyncIterator[str]:
    base = os.environ.get("TIDINGS_TEST_DATABASE_URL")
    embedded = None
    if base is None:
        embedded = Embedded(tmp_path_factory.mktemp("pg"), redis=False).start()
        base = embedded.database_url
        assert base is not None
    try:
        async with scratch_database(base, "tidings_test") as url:
            yield url
    finally:
        if embedded is not None:
            embedded.stop()


@pytest.fixture(scope="session")
def redis_url(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    url = os.environ.get("TIDINGS_TEST_REDIS_URL")
    if url is not None:
        yield url
        return
    proc, url = start_redis(tmp_path_factory.mktemp("redis"), persist=False)
    yield url
    stop_process(proc)


@pytest.fixture(scope="session")
async def migrated(database_url: str, redis_url: str) -> str:
    conn = await asyncpg.connect(database_url)
    try:
        await migrate.apply(conn)
    finally:
        await conn.close()
    r = aioredis.Redis.from_url(redis_url)
    await r.flushdb()
    await r.aclose()
    return database_url


@pytest.fixture(scope="session")
async def pool(migrated: str) -> AsyncIterator[asyncpg.Pool]:
    p = await db.create_pool(migrated)
    yield p
    await p.close()


@pytest.fixture(scope="session")
async def redis(redis_url: str) -> AsyncIterator[aioredis.Redis]:
    r = aioredis.Redis.from_url(redis_url)
    yield r
    await r.aclose()


@pytest.fixture(scope="session")
def settings(migrated: str, redis_url: str) -> config.Settings:
    return config.load({
        "TIDINGS_DATABASE_URL": migrated,
        "TIDINGS_REDIS_URL": redis_url,
        "TIDINGS_JWT_SECRET": JWT_SECRET,
        "TIDINGS_API_KEYS": f"other-key,{API_KEY}",
        "TIDINGS_ADMIN_KEYS": f"{ADMIN_KEY},other-admin-key-{'b' * 16}",
        "TIDINGS_MIGRATE": "false",
        "TIDINGS_ALLOWED_ORIGINS": "http://allowed.example",
        # Push jobs are rows of the shared database: the push tests run their own workers.
        "TIDINGS_PUSH_WORKERS": "false",
    })


@pytest.fixture(scope="session")
async def node(settings: config.Settings) -> AsyncIterator[Node]:
    async with serve_node(settings) as n:
        yield n


@pytest.fixture
async def http() -> AsyncIterator[ClientSession]:
    async with ClientSession() as session:
        yield session
