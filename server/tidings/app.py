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
import uuid
from collections.abc import AsyncIterator, Callable
from pathlib import Path

from aiohttp import web

from . import logcontext
from .api import (
    admin,
    demo,
    devices,
    health,
    inbox,
    metrics,
    openapi,
    preferences,
    producer,
    profiles,
    protocol,
    types,
    unsubscribe,
    webpush,
)
from .api.http import edge
from .auth import TokenVerifier
from .bus import connect
from .bus.publisher import Publisher
from .bus.throttle import Throttle
from .config import Settings
from .core import unsubscribe as one_click
from .core.errors import ConfigError
from .core.ratelimit import RateLimiter
from .core.requests import MAX_BODY_BYTES
from .core.webpush import HostPolicy
from .gateway import node_sample, ws
from .gateway.hub import Hub
from .mail.base import Mailer
from .mail.factory import mailer
from .push.registry import Registry, WebPushSetup, parse_config
from .push.vapid import Vapid, load_key
from .services.admin import ADMIN, Admin
from .services.context import SERVICES, Services
from .services.devices import Devices
from .services.health import Health
from .services.inbox import Inbox
from .services.metrics import Metrics, Recorder
from .services.node_stats import NodeStats
from .services.preferences import Preferences
from .services.profiles import Profiles
from .services.publishing import Publishing
from .services.realtime import Realtime
from .services.types import Types
from .store import backlog, db, migrate
from .workers.email import EmailWorker
from .workers.push import PushWorker, WorkerConfig, worker_name
from .workers.relay import Relay

log = logging.getLogger(__name__)
STOP_TIMEOUT = 5.0  # seconds a push worker gets to settle its sends at shutdown


def create_app(settings: Settings) -> web.Application:
    assert settings.database_url and settings.redis_url, "resolve embedded servers first"
    protocol.install()
    app = web.Application(client_max_size=MAX_BODY_BYTES,
                          middlewares=[edge(settings.allowed_origins)])
    for module in (inbox, devices, preferences, producer, types, profiles, health, metrics, openapi,
                   demo, webpush, admin, ws, unsubscribe):
        app.add_routes(module.routes)
    app.cleanup_ctx.append(_node(settings, webpush_setup(settings)))
    app.on_shutdown.append(_close_sockets)
    return app


async def _close_sockets(app: web.Application) -> None:
    """Shutdown begins: sockets close with 1012 so clients reconnect to another node."""
    app[ws.HUB].close_sockets()


def webpush_setup(settings: Settings) -> WebPushSetup:
    """The VAPID signer (None without a key) and where Web Push may post; a key that cannot
    be read is a ConfigError."""
    vapid = None
    if settings.vapid_private_key:
        text = settings.vapid_private_key
        try:
            if text.startswith("@"):
                text = Path(text[1:]).read_text()
            vapid = Vapid(load_key(text), settings.vapid_subject or "")
        except (OSError, ValueError) as exc:
            raise ConfigError("TIDINGS_VAPID_PRIVATE_KEY", str(exc)) from None
    return WebPushSetup(vapid, HostPolicy.parse(settings.webpush_allowed_hosts))


def push_worker(settings: Settings, redis: connect.Redis | None, pool: db.Pool,
                name: str | None = None, webpush: WebPushSetup | None = None,
                metrics: Recorder | None = None) -> tuple[PushWorker, Registry]:
    """A push worker with the settings' providers; close the registry after it stops.

    ``name`` makes the worker's lease name unique when one process runs several nodes;
    without ``redis`` there is no per-device throttle; its sends are recorded in ``metrics``.
    """
    webpush = webpush or webpush_setup(settings)
    registry = Registry.from_config(
        parse_config(settings.push_config, vapid=webpush.vapid is not None), webpush=webpush)
    if metrics is not None:
        metrics.known_providers(app.provider.name for app in registry.apps)
    extra = {"name": worker_name(name)} if name else {}
    config = WorkerConfig(
        **extra,
        max_attempts=settings.push_max_attempts, lease=settings.push_lease,
        backoff_base=settings.push_backoff_base, backoff_cap=settings.push_backoff_cap,
        device_per_minute=settings.push_device_per_minute,
    )
    throttle = Throttle(redis) if redis is not None else None
    return PushWorker(pool, registry, config, throttle=throttle, metrics=metrics), registry


def public_base(settings: Settings) -> str:
    """TIDINGS_PUBLIC_URL (else the address this server listens on), no trailing slash."""
    if settings.public_url:
        return settings.public_url.rstrip("/")
    host = {"0.0.0.0": "127.0.0.1", "::": "::1", "": "127.0.0.1"}.get(settings.host,
                                                                     settings.host)
    host = f"[{host.strip('[]')}]" if ":" in host else host
    return f"http://{host}:{settings.port}"


def preferences_url(settings: Settings) -> str:
    """Where an e-mail's ``List-Unsubscribe`` sends a user: the demo page's preferences
    panel under :func:`public_base`."""
    return public_base(settings) + "/#prefs"


def one_click_links(settings: Settings) -> Callable[[str, str], str] | None:
    """(user id, type) -> the one-click unsubscribe URL of an e-mail; None without a secret."""
    if not settings.unsubscribe_key:
        return None
    base, key = public_base(settings), one_click.signing_key(settings.unsubscribe_key)
    return lambda user_id, kind: one_click.link(base, key, user_id, kind)


def email_worker(settings: Settings, pool: db.Pool,
                 name: str | None = None) -> tuple[EmailWorker, Mailer]:
    """An e-mail worker with the settings' mailer (SMTP, else the console); close the
    mailer after it stops. ``name`` as for :func:`push_worker`."""
    sender = mailer(settings)
    extra = {"name": worker_name(f"{name}-email")} if name else {}
    config = WorkerConfig(
        **extra, max_attempts=settings.push_max_attempts, lease=settings.push_lease)
    return EmailWorker(pool, sender, config, preferences_url=preferences_url(settings),
                       unsubscribe=one_click_links(settings),
                       connections=settings.smtp_connections), sender


def _node(settings: Settings, webpush: WebPushSetup):
    async def node(app: web.Application) -> AsyncIterator[None]:
        node_id = settings.node_id or uuid.uuid4().hex[:12]
        logcontext.bind(node_id=node_id)  # the node's tasks, started below, carry it
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
        emails: EmailWorker | None = None
        email_task: asyncio.Task[None] | None = None
        sender: Mailer | None = None
        publishing: Publishing | None = None
        stats: NodeStats | None = None
        metrics_port: web.AppRunner | None = None
        try:
            if settings.migrate:
                async with pool.acquire() as conn:
                    for name in await migrate.apply(conn):
                        log.info("applied migration %s", name)
            kinds = Types(pool)
            await kinds.load()
            if settings.types:
                log.info("loaded %d notification types from TIDINGS_TYPES",
                         await kinds.load_setting(settings.types))
            publishing = Publishing(pool, publisher, health,
                                    here=(node_id, hub.deliver_here), plan_push=kinds.plan_push,
                                    uses_email=kinds.uses_email,
                                    commit_runs=settings.publish_commits)
            services = Services(
                settings=settings, node_id=node_id, pool=pool, redis=redis,
                verifier=TokenVerifier(settings), publisher=publisher, publishing=publishing,
                inbox=Inbox(pool, publisher, health), devices=Devices(pool, webpush.policy),
                health=health, types=kinds, profiles=Profiles(pool),
                preferences=Preferences(pool, kinds, publisher, health),
                vapid_public_key=webpush.vapid.public_key if webpush.vapid else None,
                user_limiter=(RateLimiter(settings.rate_limit_user, 5 * settings.rate_limit_user)
                              if settings.rate_limit_user else None),
                producer_limiter=(RateLimiter(settings.rate_limit_producer,
                                              2 * settings.rate_limit_producer)
                                  if settings.rate_limit_producer else None),
                metrics=measured,
            )
            app[SERVICES] = services
            app[ws.HUB] = hub
            app[ADMIN] = Admin(settings, pool, redis, publishing, kinds)
            app[ws.GATE] = ws.Gate(hub, services)
            await hub.start()
            stats = NodeStats(redis, node_id, lambda: node_sample.sample(hub), health.report)
            stats.start()
            if measured is not None:
                measured.watch_sockets(lambda: (hub.rooms.socket_count(), len(hub.rooms)))
                measured.watch_backlog(lambda: backlog.read(pool), health.report)
                if settings.metrics_port is not None:
                    metrics_port = await metrics.serve(measured, settings.metrics_host,
                                                       settings.metrics_port)
            tasks.append(asyncio.create_task(Relay(pool, publishing).run(), name="relay"))
            tasks.append(asyncio.create_task(kinds.run(), name="types-reload"))
            if settings.push_workers:
                worker, registry = push_worker(settings, redis, pool, node_id, webpush,
                                               metrics=recorder)
                push_task = asyncio.create_task(worker.run(), name="push-worker")
                emails, sender = email_worker(settings, pool, node_id)
                email_task = asyncio.create_task(emails.run(), name="email-worker")
            yield
        finally:
            if metrics_port is not None:
                await metrics_port.cleanup()
            for w, task in ((worker, push_task), (emails, email_task)):
                if w is not None and task is not None:
                    w.stop()  # returns once its sends are settled; cancel if it takes long
                    with contextlib.suppress(TimeoutError, asyncio.CancelledError):
                        await asyncio.wait_for(task, STOP_TIMEOUT)
            if sender is not None:
                await sender.close()
            for task in tasks:
                task.cancel()
            for task in tasks:
                with contextlib.suppress(asyncio.CancelledError):
                    await task
            if stats is not None:
                await stats.stop()
            if publishing is not None:
                await publishing.retired()  # before the pool closes
            await health.close()
            await hub.stop()
            if registry is not None:
                await registry.close()
            await blocking.aclose()
            await redis.aclose()
            await pool.close()

    return node
