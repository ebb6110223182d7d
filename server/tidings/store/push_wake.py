"""The connection that wakes push workers: ``LISTEN`` on :data:`push_jobs.WAKE_CHANNEL`.

What may live here: the listening connection and nothing else.

Contract: :meth:`WakeListener.ensure` holds one pool connection listening on the
channel and calls ``on_wake`` for each notification (jobs were added). Wake-ups
are hints: a broken connection loses some, so workers also poll. ``ensure``
replaces a broken connection; it raises only
:class:`~tidings.core.errors.StoreUnavailable` or :class:`~tidings.core.errors.StoreError`.
"""

from __future__ import annotations

import contextlib
from collections.abc import Callable

import asyncpg

from .errors import store_edge, translated
from .push_jobs import WAKE_CHANNEL


class WakeListener:
    def __init__(self, pool: asyncpg.Pool, on_wake: Callable[[], None]):
        self._pool, self._on_wake = pool, on_wake
        self._conn: asyncpg.Connection | None = None

    def _heard(self, *_args: object) -> None:
        self._on_wake()

    @store_edge
    async def ensure(self) -> None:
        """Listen, on a new connection if there is none or it broke."""
        if self._conn is not None and not self._conn.is_closed():
            return
        await self.close()
        conn = await self._pool.acquire()
        try:
            await conn.add_listener(WAKE_CHANNEL, self._heard)
        except BaseException:
            await self._pool.release(conn)
            raise
        self._conn = conn
        self._on_wake()  # what was added while nobody listened is due now

    async def close(self) -> None:
        """Stop listening and give the connection back (never raises)."""
        conn, self._conn = self._conn, None
        if conn is None:
            return
        with contextlib.suppress(Exception), translated():
            if not conn.is_closed():
                await conn.remove_listener(WAKE_CHANNEL, self._heard)
        with contextlib.suppress(Exception):
            await self._pool.release(conn)
