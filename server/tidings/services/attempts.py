"""Attempts at idempotent writes whose outcome may be unknown, settled by retrying.

What may live here: telling "nothing was sent" from "sent, outcome unknown", and
retrying the latter until PostgreSQL answers.

Contracts:

- :func:`attempt` runs one write on a connection of the pool. A failure to get
  the connection is :class:`~tidings.core.errors.StoreUnavailable` (nothing was
  sent, nothing stored); a connection lost once the write was sent is
  :class:`OutcomeUnknown`.
- :func:`settle` retries an idempotent write after an unknown outcome (pauses
  from 50 ms doubling to 1 s) until it gets an answer: a result, or an error
  from PostgreSQL that says the write did not happen. If none comes within
  ``within`` seconds it raises ``StoreUnavailable`` saying the outcome is
  unknown: the one case where an error may stand for something stored.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from typing import TypeVar

from ..core.errors import StoreUnavailable
from ..store import db

T = TypeVar("T")


class OutcomeUnknown(Exception):
    """The connection broke after a write was sent: it may or may not have been done."""


async def attempt(pool: db.Pool, write: Callable[[db.Connection], Awaitable[T]]) -> T:
    """``write`` on one connection of ``pool``; see the module's contract on errors."""
    sent = False

    def acquired() -> None:
        nonlocal sent
        sent = True

    try:
        return await db.using(pool, write, acquired)
    except StoreUnavailable as exc:
        if sent:
            raise OutcomeUnknown(exc.message) from exc
        raise


async def settle(op: Callable[[], Awaitable[T]], *, unknown: bool, within: float) -> T:
    """Run ``op`` (idempotent; it raises ``OutcomeUnknown`` after an unknown outcome).

    ``unknown`` says an earlier try already had an unknown outcome: then even a
    refused connection is retried, since it does not say whether that try was done.
    """
    loop = asyncio.get_running_loop()
    deadline = loop.time() + within
    pause = 0.05
    while True:
        try:
            return await op()
        except OutcomeUnknown:
            unknown = True
        except StoreUnavailable:
            if not unknown:
                raise
        if loop.time() + pause > deadline:
            raise StoreUnavailable(
                f"PostgreSQL failed while a write was in flight and did not answer within"
                f" {within:g} s: whether it was done is unknown")
        await asyncio.sleep(pause)
        pause = min(2 * pause, 1.0)
