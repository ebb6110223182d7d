"""Helpers for tests: tokens, headers, fresh user ids, scratch databases and a snapshot of
one, nodes served in this process, waiting on a condition or on a node's health, publishing
and registering devices over HTTP, a user's socket in the background, and reading ``/metrics``."""

from __future__ import annotations

import asyncio
import contextlib
import inspect
import secrets
import socket
import subprocess
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable
from typing import Any, TypeVar
from urllib.parse import urlsplit

import aiohttp
import asyncpg
from aiohttp import ClientSession, web
from prometheus_client.parser import text_string_to_metric_families

from tidings import config
from tidings.app import create_app
from tidings.auth import mint
from tidings.client import Subscriber
from tidings.core import events
from tidings.services.context import SERVICES
from tidings.store import migrate, outbox, push_jobs
from tidings.store import publish as store

JWT_SECRET = "test-secret-" + "x" * 40
API_KEY = "test-producer-key"
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


@contextlib.asynccontextmanager
async def migrated_database(url: str, prefix: str = "tidings_scratch") -> AsyncIterator[str]:
    """:func:`scratch_database` with Tidings' schema applied."""
    async with scratch_database(url, prefix) as scratch:
        conn = await asyncpg.connect(scratch)
        try:
            await migrate.apply(conn)
        finally:
            await conn.close()
        yield scratch


async def store_publish(pool: asyncpg.Pool, users: list[str], push: dict | None = None, *,
                        message: str = "hello", delay: float = 0.0, check_unread: bool = False,
                        **content: Any) -> list[str]:
    """Store one notification for ``users`` and its push jobs straight through the store
    (no node), and retire its outbox row, as a publish hands them off (a relay would hand
    it off again); returns the recipients' uids in the order of ``users``."""
    push = {"when": "always"} if push is None else push
    async with pool.acquire() as conn, conn.transaction():
        [stored] = await store.publish(conn, store.prepare([store.Draft(
            users, [str(uuid.uuid4()) for _ in users], {"message": message, **content}, push)]))
        await outbox.retire(conn, {stored.outbox_id: [push_jobs.OwedPush(
            push, [r.id for r in stored.rows], delay=delay, check_unread=check_unread)]})
    return list(stored.draft.uids)


async def stored_once_each(pool, users: list[str]) -> dict[str, tuple[int, int, int]]:
    """user -> (their stored rows, last_seq, total_count): what a publish stored."""
    rows = await pool.fetch(
        "SELECT s.user_id, (SELECT count(*) FROM tidings_notifications n"
        "  WHERE n.user_id = s.user_id) AS n, s.last_seq, s.total_count"
        " FROM tidings_user_state s WHERE s.user_id = ANY($1)", users)
    return {r["user_id"]: (r["n"], r["last_seq"], r["total_count"]) for r in rows}


async def slow_socket(url: str, user: str) -> Any:
    """A socket of ``user`` on the node at ``url`` that stops reading: a tiny receive
    window, and the client stops reading from the network once one frame waits."""
    from websockets.asyncio.client import connect

    sock = socket.socket()
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
    sock.connect(("127.0.0.1", urlsplit(url).port))
    return await connect(url.replace("http", "ws") + "/ws/me/notifications", sock=sock,
                         additional_headers={"Authorization": f"Bearer {token(user)}"},
                         max_queue=1)


async def read_to_close(ws: Any, within: float = 30.0) -> int | None:
    """Read a websockets client socket until it ends; its close code (None if it did not
    end within ``within`` seconds)."""
    try:
        async with asyncio.timeout(within):
            while True:
                await ws.recv()
    except Exception:
        return ws.close_code


def event_users(event: dict[str, Any]) -> list[str]:
    """The user ids a bus event concerns (its rows' users, or its one user)."""
    if event["k"] == events.NOTIFICATION:
        return [row[0] for row in event["r"]]
    return [event["u"]]


def event_part(event: dict[str, Any], users: set[str]) -> dict[str, Any] | None:
    """The part of a bus event that concerns ``users`` (None if none does): what the bus
    routes to a node holding them."""
    if event["k"] == events.NOTIFICATION:
        rows = [row for row in event["r"] if row[0] in users]
        if not rows:
            return None
        return event if len(rows) == len(event["r"]) else {**event, "r": rows}
    return event if event["u"] in users else None


def port_free(port: int) -> bool:
    """Whether ``port`` on 127.0.0.1 can be bound now."""
    with socket.socket() as sock:
        try:
            sock.bind(("127.0.0.1", port))
        except OSError:
            return False
    return True


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


T = TypeVar("T")


async def eventually(check: Callable[[], T | Awaitable[T]], within: float = 60.0,
                     every: float = 0.05) -> T:
    """Call ``check`` (plain or async) every ``every`` seconds until it returns something
    true, and return that; fail after ``within`` seconds (a hanging check included)."""
    got: object = None
    deadline = asyncio.timeout(within)
    try:
        async with deadline:
            while True:
                got = check()
                if inspect.isawaitable(got):
                    got = await got
                if got:
                    return got  # type: ignore[return-value]
                await asyncio.sleep(every)
    except TimeoutError:
        if not deadline.expired():
            raise  # the check's own
        name = getattr(check, "__qualname__", repr(check))
        raise AssertionError(f"{name} still false after {within} s (last: {got!r:.300})") from None


async def healthy(url: str, proc: subprocess.Popen | None = None,
                  within: float = 30.0) -> dict:
    """Wait until the node at ``url`` answers ``/healthz`` (failing at once if its process
    ``proc`` exited); the answer's body."""
    async with ClientSession() as http:
        async def answer() -> dict | None:
            assert proc is None or proc.poll() is None, f"the node exited with {proc.returncode}"
            try:
                async with http.get(f"{url}/healthz") as r:
                    return await r.json() if r.status == 200 else None
            except aiohttp.ClientError:
                return None
        return await eventually(answer, within)


def _url(at: Node | Any) -> str:
    """The base URL of ``at``: a node (anything with ``url``) or a URL."""
    return at if isinstance(at, str) else at.url


async def post_notification(http: ClientSession, at: Node | str, recipients: list[str],
                            message: str | None = "hello", **fields: Any) -> tuple[int, dict]:
    """POST one notification as the producer to the node or URL ``at``: (status, body).
    ``message=None`` leaves the message out (for requests that must be refused)."""
    body = {"recipients": recipients, **({} if message is None else {"message": message}),
            **fields}
    async with http.post(f"{_url(at)}/api/v1/notifications", headers=PRODUCER, json=body) as r:
        return r.status, await r.json()


async def publish(http: ClientSession, at: Node | str, recipients: list[str],
                  message: str = "hello", *, expect: tuple[int, ...] = (201,),
                  **fields: Any) -> dict:
    """:func:`post_notification` answered with a status in ``expect``; returns the body."""
    status, body = await post_notification(http, at, recipients, message, **fields)
    assert status in expect, (status, body)
    return body


def uids(body: dict) -> dict[str, str]:
    """Recipient -> uid of a publish's answer."""
    return {n["recipient"]: n["uid"] for n in body["notifications"]}


async def deliveries(http: ClientSession, at: Node | str, uid: str) -> list[dict]:
    """The delivery log of notification ``uid``, as the producer reads it."""
    async with http.get(f"{_url(at)}/api/v1/notifications/{uid}/deliveries",
                        headers=PRODUCER) as r:
        assert r.status == 200, await r.text()
        return (await r.json())["deliveries"]


async def register_device(http: ClientSession, at: Node | str, user: str,
                          **device: Any) -> dict:
    """Register ``device`` (the request's fields) as ``user``; the created device."""
    async with http.post(f"{_url(at)}/api/v1/me/devices", headers=user_headers(user),
                         json=device) as r:
        assert r.status == 201, await r.text()
        return await r.json()


def seqs(messages: list[dict]) -> list[int]:
    """The seqs of the notification frames among a socket's ``messages``."""
    return [m["notification"]["seq"] for m in messages if m["type"] == "notification"]


class Socket:
    """A user's socket in the background (a :class:`Subscriber` of ``url``, one URL or a
    list, with ``options``), keeping what it receives."""

    def __init__(self, url: str | list[str], user: str, **options: Any):
        self.sub = Subscriber(url, token(user), **options)
        self.messages: list[dict] = []
        self.error: BaseException | None = None
        self.task = asyncio.create_task(self._run())

    async def _run(self) -> None:
        try:
            async for message in self.sub:
                self.messages.append(message)
        except Exception as exc:
            self.error = exc

    def seqs(self) -> list[int]:
        return seqs(self.messages)

    def last(self, kind: str) -> dict:
        """The latest message of type ``kind``."""
        return next(m for m in reversed(self.messages) if m["type"] == kind)

    async def until(self, check: Callable[[list[dict]], object], within: float = 30.0) -> None:
        """Wait until ``check(messages)`` holds; fail at once if the socket gave up."""
        def ready() -> object:
            assert self.error is None and not self.task.done(), self.error or self.task
            return check(self.messages)
        await eventually(ready, within, every=0.02)

    async def close(self) -> None:
        await self.sub.close()
        self.task.cancel()


Samples = dict[tuple[str, frozenset[tuple[str, str]]], float]


def parse_metrics(text: str) -> tuple[set[str], Samples]:
    """The family names and the samples of a ``/metrics`` scrape."""
    families, samples = set(), {}
    for family in text_string_to_metric_families(text):
        families.add(family.name + ("_total" if family.type == "counter" else ""))
        for s in family.samples:
            samples[s.name, frozenset(s.labels.items())] = s.value
    return families, samples


def value(samples: Samples, name: str, **labels: str) -> float | None:
    """The sample ``name`` with exactly ``labels``, or None."""
    return samples.get((name, frozenset(labels.items())))


async def scrape(http: ClientSession, url: str,
                 headers: dict[str, str] | None = None) -> tuple[set[str], Samples]:
    """``/metrics`` of ``url`` (with the admin key unless ``headers`` are given)."""
    async with http.get(url + "/metrics", headers=ADMIN if headers is None else headers) as r:
        assert r.status == 200, await r.text()
        assert r.headers["Content-Type"] == "text/plain; version=0.0.4; charset=utf-8"
        return parse_metrics(await r.text())


async def metrics_until(http: ClientSession, url: str, check: Callable[[Samples], bool],
                        within: float = 30.0,
                        headers: dict[str, str] | None = None) -> Samples:
    """Scrape ``url`` (as :func:`scrape` does) until ``check(samples)`` holds, and return
    those samples; a port not listening yet is scraped again."""
    async def scraped() -> Samples | None:
        try:
            _, samples = await scrape(http, url, headers)
        except aiohttp.ClientConnectionError:
            return None
        return samples if check(samples) else None
    return await eventually(scraped, within, every=0.1)
