"""Redis clients. Commands get a socket timeout; blocking reads get their own client.

redis-py's asyncio client times out a socket after 5 s by default and then
retries, which turns an ``XREAD BLOCK`` longer than that into a silent minute
of waiting. So every BLOCK we issue stays well under :data:`BLOCKING_TIMEOUT`,
the blocking client's socket timeout: a connection that went silent without a
reset (a peer or a middlebox that lost it) is given up after that long and the
read is made again on a new connection, instead of waiting forever.
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


#: Seconds a blocking read may go without an answer; BLOCKs stay well under it.
BLOCKING_TIMEOUT = 5.0


def blocking_client(url: str) -> aioredis.Redis:
    return aioredis.Redis.from_url(url, socket_timeout=BLOCKING_TIMEOUT,
                                   socket_connect_timeout=3, health_check_interval=15)
