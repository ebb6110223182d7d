"""Fixtures of the integration tests that need a database of their own."""

from __future__ import annotations

from collections.abc import AsyncIterator

import asyncpg
import pytest

from tidings.store import db, migrate

from helpers import scratch_database


@pytest.fixture(scope="module")
async def own_database(database_url: str) -> AsyncIterator[str]:
    """A migrated database for one module: no push worker of another test claims its jobs."""
    async with scratch_database(database_url, "tidings_own") as url:
        conn = await asyncpg.connect(url)
        try:
            await migrate.apply(conn)
        finally:
            await conn.close()
        yield url


@pytest.fixture(scope="module")
async def own_pool(own_database: str) -> AsyncIterator[db.Pool]:
    p = await db.create_pool(own_database)
    yield p
    await p.close()
