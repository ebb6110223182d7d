"""Token expiries are swept by the hub: due sockets close, refreshed and departed ones don't."""

from __future__ import annotations

import asyncio

from tidings.gateway.connection import Connection
from tidings.gateway.hub import Hub

from helpers import new_user


async def test_expiry_sweep_closes_due_sockets_only(settings, pool, redis):
    hub = Hub(settings, "sweep-node", pool, redis, redis)
    due, refreshed, gone = (Connection(None, None, new_user("x"), 8) for _ in range(3))
    now = 1_000_000.0
    hub.expire_at(due, now + 5)
    hub.expire_at(refreshed, now + 5)
    hub.expire_at(gone, now + 5)
    hub.expire_at(refreshed, now + 3600)  # a refresh replaces the old expiry
    hub.leave(gone)  # a socket that left is forgotten, not kept until its expiry
    assert sorted(len(b) for b in hub._expiring.values()) == [1, 1]

    hub.expire_due(now + 4)
    assert not any(c.closing for c in (due, refreshed, gone))
    hub.expire_due(now + 5)
    await asyncio.sleep(0)
    assert due.closing and not refreshed.closing and not gone.closing
    hub.leave(due)
    assert [set(b) for b in hub._expiring.values()] == [{refreshed}]
