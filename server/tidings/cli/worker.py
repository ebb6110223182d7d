"""``tidings worker``: push and e-mail workers on their own, against an external PostgreSQL."""

from __future__ import annotations

import argparse
import asyncio
import signal

from ..core.errors import ConfigError
from . import common, reach, tuning


def cmd_worker(args: argparse.Namespace) -> int:
    """Run a push worker and an e-mail worker alone (``tidings serve`` also runs them
    unless told not to)."""
    settings = common.settings(args, require_auth=False)
    if settings.embedded_postgres:
        raise ConfigError("TIDINGS_DATABASE_URL", "tidings worker needs TIDINGS_DATABASE_URL"
                          " (TIDINGS_REDIS_URL only for the per-device throttle); on the"
                          " embedded default, tidings serve runs the push workers itself")
    common.setup_logging(settings)
    reach.reach_database(settings, migrate=False)
    if settings.redis_url:
        reach.reach_redis(settings)
    tuning.use_uvloop()
    tuning.tune_gc()

    async def work() -> None:
        from ..app import email_worker, push_worker
        from ..bus import connect
        from ..store import db

        tuning.raise_open_files()  # one file per provider connection
        pool = await db.create_pool(settings.database_url or "")
        redis = connect.client(settings.redis_url) if settings.redis_url else None
        worker, registry = push_worker(settings, redis, pool)
        emails, sender = email_worker(settings, pool)
        loop = asyncio.get_running_loop()

        def stop() -> None:
            worker.stop()
            emails.stop()

        for sig in (signal.SIGINT, signal.SIGTERM):
            loop.add_signal_handler(sig, stop)
        print("push worker and e-mail worker: sending what is due, then stopping" if args.burst
              else "push worker running, and the e-mail worker; Ctrl-C stops them", flush=True)
        try:
            await asyncio.gather(worker.run(burst=args.burst), emails.run(burst=args.burst))
        finally:
            await sender.close()
            await registry.close()
            if redis is not None:
                await redis.aclose()
            await pool.close()

    asyncio.run(work())
    return 0
