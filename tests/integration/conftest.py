"""Fixtures of the integration tests that need a database of their own, and a TCP fault
proxy in front of it (``tests/fakes/tcp_proxy.py``)."""

from __future__ import annotations

from collections.abc import AsyncIterator

import pytest

from tidings.store import db

from fakes.tcp_proxy import TcpProxy, target_of, through
from helpers import migrated_database


@pytest.fixture(scope="module")
async def own_database(database_url: str) -> AsyncIterator[str]:
    """A migrated database for one module: no push worker of another test claims its jobs."""
    async with migrated_database(database_url, "tidings_own") as url:
        yield url


@pytest.fixture(scope="module")
async def own_pool(own_database: str) -> AsyncIterator[db.Pool]:
    p = await db.create_pool(own_database)
    yield p
    await p.close()


@pytest.fixture
async def proxy(own_database: str) -> AsyncIterator[TcpProxy]:
    """A fault proxy in front of the module's database (reach it with ``through``)."""
    p = TcpProxy(target_of(own_database))
    await p.start()
    yield p
    await p.stop()


@pytest.fixture
async def proxied_pool(proxy: TcpProxy, own_database: str) -> AsyncIterator[db.Pool]:
    p = await db.create_pool(through(proxy, own_database))
    yield p
    await p.close()
