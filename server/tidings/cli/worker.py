"""``tidings worker``: push and e-mail workers on their own, against an external PostgreSQL.

With ``TIDINGS_METRICS_PORT`` it serves its metrics there (push sends, the
queue gauges, its dependency errors); it has no other port.
"""

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
    if settings.metrics and settings.metrics_port is not None:
        reach.check_port(settings.metrics_host, settings.metrics_port,
                         "TIDINGS_METRICS_PORT", "TIDINGS_METRICS_HOST")
    reach.reach_database(settings, migrate=False)
    if settings.redis_url:
        reach.reach_redis(settings)
    tuning.use_uvloop()
    tuning.tune_gc()

    async def work() -> None:
        from ..api import metrics as metrics_port
        from ..app import email_worker, push_worker
        from ..bus import connect
        from ..services.metrics import Metrics
        from ..store import backlog, db

        tuning.raise_open_files()  # one file per provider connection
        pool = await db.create_pool(settings.database_url or "")
        redis = connect.client(settings.redis_url) if settings.redis_url else None
        served = None
        metrics = Metrics() if settings.metrics and settings.metrics_port is not None else None
        if metrics is not None:
            metrics.watch_backlog(lambda: backlog.read(pool))
            served = await metrics_port.serve(metrics, settings.metrics_host,
                                              settings.metrics_port or 0)
        worker, registry = push_worker(settings, redis, pool, metrics=metrics)
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
            if served is not None:
                await served.cleanup()
            await registry.close()
            if redis is not None:
                await redis.aclose()
            await pool.close()

    asyncio.run(work())
    return 0
