"""A push worker in a process of its own, run until killed (the crash test).

Arguments: database URL, Redis URL, consumer name; ``TIDINGS_PUSH_CONFIG`` holds the apps.
"""

import asyncio
import os
import sys

import redis.asyncio as aioredis

from tidings.push.registry import Registry, parse_config
from tidings.store import db
from tidings.workers.push import PushWorker, WorkerConfig


async def main(db_url: str, redis_url: str, consumer: str) -> None:
    pool = await db.create_pool(db_url)
    registry = Registry.from_config(parse_config(os.environ["TIDINGS_PUSH_CONFIG"]))
    worker = PushWorker(aioredis.Redis.from_url(redis_url), pool, registry,
                        WorkerConfig(consumer=consumer))
    await worker.run()


if __name__ == "__main__":
    asyncio.run(main(*sys.argv[1:4]))
