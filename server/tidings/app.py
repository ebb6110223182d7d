"""The composition root: the only place that picks concrete classes and wires a node.

:func:`create_app` returns the aiohttp application of one node: routes, the
error middleware, and a cleanup context that opens the pools, applies
migrations (unless turned off), starts the background workers (and the metrics
port, if set) and, on shutdown, stops them in order.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import socket
import uuid
from collections.abc import AsyncIterator

from aiohttp import web

from .api import demo, devices, health, inbox, metrics, openapi, producer, protocol
from .api.http import edge
from .auth import TokenVerifier
from .bus import connect
from .bus.publisher import Publisher
from .bus.throttle import Throttle
from .config import Settings
from .core.ratelimit import RateLimiter
from .core.schemas import MAX_BODY_BYTES
from .gateway import ws
from .gateway.hub import Hub
from .push.registry import Registry, parse_config
from .services.context import SERVICES, Services
from .services.devices import Devices
from .services.health import Health
from .services.inbox import Inbox
from .services.metrics import Metrics, Recorder
from .services.publishing import Publishing
from .services.realtime import Realtime
from .store import backlog, db, migrate
from .workers.push import PushWorker, WorkerConfig
from .workers.relay import Relay

log = logging.getLogger(__name__)
STOP_TIMEOUT = 5.0  # seconds a push worker gets to settle its sends at shutdown


def create_app(settings: Settings) -> web.Application:
    assert settings.database_url and settings.redis_url, "resolve embedded servers first"
    protocol.install()
    app = web.Application(client_max_size=MAX_BODY_BYTES,
                          middlewares=[edge(settings.allowed_origins)])
    for module in (inbox, devices, producer, health, metrics, openapi, demo, ws):
        app.add_routes(module.routes)
    app.cleanup_ctx.append(_node(settings))
    app.on_shutdown.append(_close_sockets)
    return app


async def _close_sockets(app: web.Application) -> None:
    """Shutdown begins: sockets close with 1012 so clients reconnect to another node."""
    await app[ws.HUB].shutdown()


def push_worker(settings: Settings, redis: connect.Redis | None, pool: db.Pool,
                name: str | None = None, metrics: Recorder | None = None,
                ) -> tuple[PushWorker, Registry]:
    """A push worker with the settings' providers; close the registry after it stops.

    ``name`` makes the worker's lease name unique when one process runs several nodes;
    without ``redis`` there is no per-device throttle; its sends are recorded in ``metrics``.
    """
    registry = Registry.from_config(parse_config(settings.push_config))
    if metrics is not None:
        metrics.known_providers(app.provider.name for app in registry.apps)
    extra = {"name": f"{socket.gethostname()}-{os.getpid()}-{name}"} if name else {}
    config = WorkerConfig(
        **extra,
        max_attempts=settings.push_max_attempts, lease=settings.push_lease,
        backoff_base=settings.push_backoff_base, backoff_cap=settings.push_backoff_cap,
        device_per_minute=settings.push_device_per_minute,
    )
    throttle = Throttle(redis) if redis is not None else None
    return PushWorker(pool, registry, config, throttle=throttle, metrics=metrics), registry


def _node(settings: Settings):
    async def node(app: web.Application) -> AsyncIterator[None]:
        node_id = settings.node_id or uuid.uuid4().hex[:12]
        pool = await db.create_pool(settings.database_url)
        redis = connect.client(settings.redis_url)
        blocking = connect.blocking_client(settings.redis_url)
        publisher = Publisher(redis)
        measured = Metrics() if settings.metrics else None
        recorder = measured or Recorder()
        health = Health({"postgres": lambda: db.ping(pool), "redis": publisher.ping},
                        metrics=recorder)
        hub = Hub(settings, Realtime(pool, redis, blocking, node_id, report=health.report),
                  recorder)
        tasks: list[asyncio.Task[object]] = []
        registry: Registry | None = None
        worker: PushWorker | None = None
        push_task: asyncio.Task[None] | None = None
        publishing: Publishing | None = None
        metrics_port: web.AppRunner | None = None
        try:
            if settings.migrate:
                async with pool.acquire() as conn:
                    for name in await migrate.apply(conn):
                        log.info("applied migration %s", name)
            publishing = Publishing(pool, publisher, health,
                                    here=(node_id, hub.deliver_here))
            services = Services(
                settings=settings, node_id=node_id, pool=pool, redis=redis,
                verifier=TokenVerifier(settings), publisher=publisher, publishing=publishing,
                inbox=Inbox(pool, publisher, health), devices=Devices(pool), health=health,
                user_limiter=(RateLimiter(settings.rate_limit_user, 5 * settings.rate_limit_user)
                              if settings.rate_limit_user else None),
                producer_limiter=(RateLimiter(settings.rate_limit_producer,
                                              2 * settings.rate_limit_producer)
                                  if settings.rate_limit_producer else None),
                metrics=measured,
            )
            app[SERVICES] = services
            app[ws.HUB] = hub
            await hub.start()
            if measured is not None:
                measured.watch_sockets(lambda: (hub.rooms.socket_count(), len(hub.rooms)))
                measured.watch_backlog(lambda: backlog.read(pool), health.report)
                if settings.metrics_port is not None:
                    metrics_port = await metrics.serve(measured, settings.metrics_host,
                                                       settings.metrics_port)
            tasks.append(asyncio.create_task(Relay(pool, publishing).run(), name="relay"))
            if settings.push_workers:
                worker, registry = push_worker(settings, redis, pool, node_id, recorder)
                push_task = asyncio.create_task(worker.run(), name="push-worker")
            yield
        finally:
            if metrics_port is not None:
                await metrics_port.cleanup()
            if worker is not None and push_task is not None:
                worker.stop()  # returns once its sends are settled; cancel if it takes long
                with contextlib.suppress(TimeoutError, asyncio.CancelledError):
                    await asyncio.wait_for(push_task, STOP_TIMEOUT)
            for task in tasks:
                task.cancel()
            for task in tasks:
                with contextlib.suppress(asyncio.CancelledError):
                    await task
            if publishing is not None:
                await publishing.retired()  # before the pool closes
            await health.close()
            await hub.shutdown()
            if registry is not None:
                await registry.close()
            await blocking.aclose()
            await redis.aclose()
            await pool.close()

    return node
