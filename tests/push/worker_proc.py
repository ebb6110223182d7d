"""A push worker in a process of its own, run until killed (the crash test).

Arguments: database URL, worker name; ``TIDINGS_PUSH_CONFIG`` holds the apps. No
Redis: the worker needs none (no throttle here).
"""

import asyncio
import os
import sys

from tidings.push.registry import Registry, parse_config
from tidings.store import db
from tidings.workers.push import PushWorker, WorkerConfig


async def main(db_url: str, name: str) -> None:
    pool = await db.create_pool(db_url)
    registry = Registry.from_config(parse_config(os.environ["TIDINGS_PUSH_CONFIG"]))
    await PushWorker(pool, registry, WorkerConfig(name=name)).run()


if __name__ == "__main__":
    asyncio.run(main(*sys.argv[1:3]))
