"""An attempt's outcome: nothing sent (no connection) against sent and then lost."""

from __future__ import annotations

import uuid

import pytest

from tidings.core.errors import StoreError, StoreUnavailable
from tidings.services.attempts import OutcomeUnknown, attempt
from tidings.store import db


async def test_no_connection_is_unavailable_and_the_write_never_runs(proxy, proxied_pool):
    await proxy.refuse()
    ran = []

    async def write(conn: db.Connection) -> int:
        ran.append(conn)
        return 1

    try:
        with pytest.raises(StoreUnavailable) as caught:
            await attempt(proxied_pool, write)
        assert not isinstance(caught.value, OutcomeUnknown) and ran == []
    finally:
        await proxy.accept()


async def test_a_connection_lost_once_the_write_is_sent_is_an_unknown_outcome(
        proxy, proxied_pool):
    marker = f"cut-{uuid.uuid4().hex}"
    proxy.cut_after(marker.encode())
    with pytest.raises(OutcomeUnknown):
        await attempt(proxied_pool, lambda conn: conn.fetchval("SELECT $1::text", marker))
    # the pool serves the next attempt on a working connection, with its answer
    assert await attempt(proxied_pool, lambda conn: conn.fetchval("SELECT 41 + 1")) == 42


async def test_a_refusal_by_postgres_is_its_error_and_the_connection_goes_back(own_pool):
    with pytest.raises(StoreError):  # the driver's error, translated: nothing unknown
        await attempt(own_pool, lambda conn: conn.fetchval("SELECT 1/0"))
    assert own_pool.get_idle_size() == own_pool.get_size()
