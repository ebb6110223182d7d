"""Connection pools: JSON columns decode with orjson, every pool is set up alike.

What may live here: the pool, its type names for the layers above (:data:`Pool`,
:data:`Connection`), and the ways to hold one of its connections.

Contracts:

- No standing connections (``min_size=0``): asyncpg 0.32 keeps a floor of
  connections by reconnecting in the background and logs a traceback each
  time that fails, which during an outage is noise, not news; connections are
  opened on demand and kept for reuse.
- No reset query on release: Tidings sets no session state and closes every
  transaction and advisory lock itself (asyncpg's ``reset=None`` means "the
  default reset", so a coroutine that does nothing is passed instead).
- :func:`connection` and :func:`transaction` raise only the project's errors
  (:mod:`tidings.store.errors`), and so does :func:`using`. A failure to *get* a connection raises
  :class:`~tidings.core.errors.StoreUnavailable` before the block runs: nothing
  was sent. A failure while *releasing* one (asyncpg's ``InternalClientError``
  after the server has already answered) is logged and never replaces the
  block's result: what the block got back stays true.
"""

from __future__ import annotations

import contextlib
import logging
from collections.abc import AsyncIterator, Awaitable, Callable
from typing import TypeAlias, TypeVar

import asyncpg
import orjson

from .errors import store_edge, translated

log = logging.getLogger(__name__)
T = TypeVar("T")

#: The pool and connection types, named for the layers that must not import asyncpg.
Pool: TypeAlias = asyncpg.Pool
Connection: TypeAlias = asyncpg.Connection
#: A row read from PostgreSQL (mapping access by column name).
Row: TypeAlias = asyncpg.Record

CONNECT_TIMEOUT = 5.0  # seconds to open a connection before PostgreSQL counts as unavailable


async def _init(conn: asyncpg.Connection) -> None:
    for name in ("json", "jsonb"):
        await conn.set_type_codec(
            name, schema="pg_catalog",
            encoder=lambda v: orjson.dumps(v).decode(), decoder=orjson.loads,
        )


async def _no_reset(conn: asyncpg.Connection) -> None:
    """The pool's reset: nothing (asyncpg still rolls back a transaction left open)."""


async def create_pool(dsn: str, *, min_size: int = 0, max_size: int = 10) -> asyncpg.Pool:
    """A pool whose connections encode and decode json/jsonb as Python values."""
    return await asyncpg.create_pool(
        dsn, min_size=min_size, max_size=max_size, init=_init, command_timeout=30,
        reset=_no_reset, timeout=CONNECT_TIMEOUT,
    )


async def _release(pool: Pool, conn: Connection) -> None:
    try:
        await pool.release(conn)
    except Exception as exc:  # the connection is terminated; the block's outcome stands
        log.info("a PostgreSQL connection failed on release and was dropped (%s)",
                 type(exc).__name__)


@contextlib.asynccontextmanager
async def connection(pool: Pool) -> AsyncIterator[Connection]:
    """One connection of ``pool`` for the block; see the module's contract on errors."""
    with translated():
        conn = await pool.acquire()
    try:
        with translated():
            yield conn
    finally:
        await _release(pool, conn)


async def using(pool: Pool, block: Callable[[Connection], Awaitable[T]],
                on_acquired: Callable[[], None] | None = None) -> T:
    """``block`` on one connection of ``pool``: :func:`connection`'s contract, without a
    context manager's generator per call (a publish's hot path). ``on_acquired`` is
    called once the connection is held, before ``block`` runs."""
    with translated():
        conn = await pool.acquire()
    try:
        if on_acquired is not None:
            on_acquired()
        with translated():
            return await block(conn)
    finally:
        await _release(pool, conn)


@contextlib.asynccontextmanager
async def transaction(conn: Connection) -> AsyncIterator[Connection]:
    """A transaction on ``conn`` for the block: committed when it ends, else rolled back."""
    with translated():
        async with conn.transaction():
            yield conn


@store_edge
async def ping(pool: Pool) -> None:
    """Raises :class:`~tidings.core.errors.StoreUnavailable` unless PostgreSQL answers."""
    async with connection(pool) as conn:
        await conn.fetchval("SELECT 1")
