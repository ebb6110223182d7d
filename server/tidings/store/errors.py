"""The store edge: asyncpg's errors become the project's own (:mod:`tidings.core.errors`).

Contract: code outside ``store`` never sees an asyncpg exception. A lost or
refused connection, a server shutting down, a timeout or a client-state error
(asyncpg's ``InternalClientError`` on a broken connection) is
:class:`StoreUnavailable`; any other refusal by PostgreSQL, and a value the
driver cannot encode (nothing was sent), is :class:`StoreError`.
"""

from __future__ import annotations

import contextlib
import functools
from collections.abc import Awaitable, Callable, Iterator
from typing import ParamSpec, TypeVar

import asyncpg
from asyncpg import exceptions as pgx
from asyncpg.exceptions import _base as pgx_client

from ..core.errors import StoreError, StoreUnavailable

P = ParamSpec("P")
R = TypeVar("R")

#: Failures after which the database (or the connection) is not there to answer.
_UNAVAILABLE = (
    OSError, TimeoutError, asyncpg.InterfaceError, pgx.InternalClientError,
    pgx.PostgresConnectionError, pgx.OperatorInterventionError,
    pgx.InsufficientResourcesError,
)


def translate_exception(exc: BaseException) -> Exception | None:
    """The project's error for a driver error, or None if ``exc`` is not one."""
    if isinstance(exc, pgx_client.DataError):  # a parameter asyncpg could not encode
        return StoreError(str(exc), type(exc).__name__)
    if isinstance(exc, _UNAVAILABLE):
        return StoreUnavailable(f"PostgreSQL is unavailable ({type(exc).__name__})")
    if isinstance(exc, asyncpg.PostgresError):
        return StoreError(str(exc), type(exc).__name__)
    return None


@contextlib.contextmanager
def translated() -> Iterator[None]:
    """Raise the project's errors in place of asyncpg's within the block."""
    try:
        yield
    except (StoreError, StoreUnavailable):
        raise
    except Exception as exc:
        mine = translate_exception(exc)
        if mine is None:
            raise
        raise mine from exc


def store_edge(fn: Callable[P, Awaitable[R]]) -> Callable[P, Awaitable[R]]:
    """Decorate a store coroutine so that it raises only the project's errors."""

    @functools.wraps(fn)
    async def wrapper(*args: P.args, **kwargs: P.kwargs) -> R:
        with translated():
            return await fn(*args, **kwargs)

    return wrapper
