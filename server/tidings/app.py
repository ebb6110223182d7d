"""The composition root: the only place that picks concrete classes and wires a node.

:func:`create_app` returns the aiohttp application of one node: routes, the
error middleware, and a cleanup context that opens the pools, applies
migrations (unless turned off), starts the background workers and, on
shutdown, stops them in order.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import uuid
from collections.abc import AsyncIterator

from aiohttp import web

from .api import devices, health, inbox, openapi, producer
from .api.http import errors_as_json
from .auth import TokenVerifier
from .bus import connect
from .bus.publisher import Publisher
from .config import Settings
from .core.schemas import MAX_BODY_BYTES
from .services.context import SERVICES, Services
from .services.inbox import Inbox
from .services.publishing import Publishing
from .store import db, migrate
from .workers.relay import Relay

log = logging.getLogger(__name__)


def create_app(settings: Settings) -> web.Application:
    assert settings.database_url and settings.redis_url, "resolve embedded servers first"
    app = web.Application(client_max_size=MAX_BODY_BYTES, middlewares=[errors_as_json])
    for module in (inbox, devices, producer, health, openapi):
        app.add_routes(module.routes)
    app.cleanup_ctx.append(_node(settings))
    return app


def _node(settings: Settings):
    async def node(app: web.Application) -> AsyncIterator[None]:
        node_id = settings.node_id or uuid.uuid4().hex[:12]
        pool = await db.create_pool(settings.database_url)
        redis = connect.client(settings.redis_url)
        tasks: list[asyncio.Task[object]] = []
        try:
            if settings.migrate:
                async with pool.acquire() as conn:
                    for name in await migrate.apply(conn):
                        log.info("applied migration %s", name)
            publisher = Publisher(redis)
            publishing = Publishing(pool, publisher)
            services = Services(
                settings=settings, node_id=node_id, pool=pool, redis=redis,
                verifier=TokenVerifier(settings), publisher=publisher, publishing=publishing,
                inbox=Inbox(pool, publisher),
            )
            app[SERVICES] = services
            tasks.append(asyncio.create_task(Relay(pool, publishing).run(), name="relay"))
            yield
        finally:
            for task in tasks:
                task.cancel()
            for task in tasks:
                with contextlib.suppress(asyncio.CancelledError):
                    await task
            await redis.aclose()
            await pool.close()

    return node
