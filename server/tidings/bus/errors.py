"""The bus edge: redis-py's errors become :class:`tidings.core.errors.BusUnavailable`.

Contract: code outside ``bus`` never sees a redis-py exception. Every Redis
failure (connection, timeout, a command error such as a missing consumer group
after Redis lost its data) is :class:`BusUnavailable`: the command may or may
not have run.
"""

from __future__ import annotations

import contextlib
import functools
from collections.abc import Awaitable, Callable, Iterator
from typing import ParamSpec, TypeVar

from redis.exceptions import RedisError

from ..core.errors import BusUnavailable

P = ParamSpec("P")
R = TypeVar("R")


@contextlib.contextmanager
def translated() -> Iterator[None]:
    """Raise :class:`BusUnavailable` in place of redis-py's (and socket) errors in the block."""
    try:
        yield
    except BusUnavailable:
        raise
    except (RedisError, OSError, TimeoutError) as exc:
        raise BusUnavailable(f"Redis is unavailable ({type(exc).__name__})") from exc


def bus_edge(fn: Callable[P, Awaitable[R]]) -> Callable[P, Awaitable[R]]:
    """Decorate a bus coroutine so that it raises only :class:`BusUnavailable`."""

    @functools.wraps(fn)
    async def wrapper(*args: P.args, **kwargs: P.kwargs) -> R:
        with translated():
            return await fn(*args, **kwargs)

    return wrapper
