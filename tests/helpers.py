"""Helpers for tests: tokens, headers, fresh user ids, a snapshot of the database."""

from __future__ import annotations

import asyncio
import contextlib
import secrets
import uuid
from collections.abc import AsyncIterator

import asyncpg
from aiohttp import web

from tidings import config
from tidings.app import create_app
from tidings.auth import mint
from tidings.client import Subscriber
from tidings.services.context import SERVICES

JWT_SECRET = "test-secret-" + "x" * 40
API_KEY = "test-producer-key"
ADMIN_KEY = "test-admin-key"
PRODUCER = {"Authorization": f"Bearer {API_KEY}"}
ADMIN_KEY = "test-admin-key-" + "a" * 24
ADMIN = {"Authorization": f"Bearer {ADMIN_KEY}"}


def with_database(url: str, name: str) -> str:
    """``url`` pointing at database ``name`` (handles the ?host= socket form)."""
    head, sep, query = url.partition("?")
    scheme, _, rest = head.partition("://")
    authority, _, _db = rest.partition("/")
    return f"{scheme}://{authority}/{name}{sep}{query}"


@contextlib.asynccontextmanager
async def scratch_database(url: str, prefix: str = "tidings_scratch") -> AsyncIterator[str]:
    """A new empty database on the server of ``url``, dropped afterwards; yields its URL."""
    name = f"{prefix}_{secrets.token_hex(4)}"
    admin = await asyncpg.connect(url)
    try:
        await admin.execute(f'CREATE DATABASE "{name}"')
        yield with_database(url, name)
    finally:
        await admin.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        await admin.close()


def token(user: str, ttl: int = 600, **kw: object) -> str:
    return mint(JWT_SECRET, user, ttl, **kw)  # type: ignore[arg-type]


def user_headers(user: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token(user)}"}


def new_user(prefix: str = "u") -> str:
    return f"{prefix}-{uuid.uuid4().hex[:10]}"


async def db_state(conn: asyncpg.Connection | asyncpg.Pool) -> dict[str, object]:
    """Everything a request could change, to show that a bad one changed nothing."""
    state: dict[str, object] = {}
    for table in ("tidings_notifications", "tidings_user_state", "tidings_devices",
                  "tidings_idempotency", "tidings_outbox", "tidings_scheduled"):
        rows = await conn.fetch(f"SELECT * FROM {table} ORDER BY 1")
        state[table] = [tuple(r.values()) for r in rows]
    return state


async def settled_state(node: Node, pool: asyncpg.Pool) -> dict[str, object]:
    """:func:`db_state` once ``node``'s publishes are done, their outbox retires included
    (those run in the background after the answer, earlier tests' too)."""
    await node.app[SERVICES].publishing.retired()
    return await db_state(pool)


class Node:
    """A Tidings node served in this process on a real loopback socket."""

    def __init__(self, runner: web.AppRunner, url: str, app: web.Application):
        self.runner = runner
        self.url = url
        self.app = app


class serve_node:
    """``async with serve_node(settings) as node``: a node on a free loopback port."""

    def __init__(self, settings: config.Settings):
        self.settings = settings

    async def __aenter__(self) -> Node:
        app = create_app(self.settings)
        self.runner = web.AppRunner(app, access_log=None)
        await self.runner.setup()
        site = web.TCPSite(self.runner, "127.0.0.1", 0)
        await site.start()
        port = site._server.sockets[0].getsockname()[1]  # type: ignore[union-attr]
        return Node(self.runner, f"http://127.0.0.1:{port}", app)

    async def __aexit__(self, *exc: object) -> None:
        await self.runner.cleanup()


class Socket:
    """A user's socket in the background, keeping what it receives."""

    def __init__(self, url: str, user: str):
        self.sub = Subscriber(url, token(user))
        self.messages: list[dict] = []
        self.task = asyncio.create_task(self._run())

    async def _run(self) -> None:
        async for message in self.sub:
            self.messages.append(message)

    async def until(self, check, within: float = 30.0) -> None:
        async with asyncio.timeout(within):
            while not check(self.messages):
                assert not self.task.done(), self.task
                await asyncio.sleep(0.02)

    async def close(self) -> None:
        await self.sub.close()
        self.task.cancel()
