"""Redis clients. Commands get a socket timeout; blocking reads get their own client.

redis-py's asyncio client times out a socket after 5 s by default and then
retries, which turns an ``XREAD BLOCK`` longer than that into a silent minute
of waiting. :func:`blocking_client` has no socket timeout and checks the
connection's health instead; every BLOCK we issue stays short anyway, and its
reader bounds each read itself (a connection gone silent without a reset must
not hold it forever: see :mod:`.node_inbox`). A socket timeout is no way to do
that: with one set, redis-py can swallow a task's cancellation that arrives
while it connects, and the node's shutdown waits forever.
"""

from __future__ import annotations

import redis.asyncio as aioredis

#: The client type, named for the layers that must not import redis.
Redis = aioredis.Redis


def client(url: str) -> aioredis.Redis:
    """Commands; a burst beyond ``max_connections`` waits for a connection, never fails."""
    pool = aioredis.BlockingConnectionPool.from_url(
        url, max_connections=64, timeout=10, socket_timeout=5, socket_connect_timeout=3,
        health_check_interval=15)
    return aioredis.Redis(connection_pool=pool)


def blocking_client(url: str) -> aioredis.Redis:
    return aioredis.Redis.from_url(url, socket_timeout=None, socket_connect_timeout=3,
                                   health_check_interval=15)
