"""Token expiries and ping phases of a node's sockets: plain data, no tasks, no clock.

The hub's two sweeping tasks read the clock and call these; an idle socket
holds no timer of its own.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from typing import Generic, Protocol, TypeVar

#: Seconds of token expiries kept in one bucket.
EXPIRY_BUCKET = 10
#: Slices of the sockets pinged in turn over one heartbeat period.
PING_PHASES = 8


class Expiring(Protocol):
    expires_at: float


T = TypeVar("T", bound=Expiring)
U = TypeVar("U")


class Expiries(Generic[T]):
    """Sockets by token expiry, bucketed by ``EXPIRY_BUCKET`` seconds.

    Contract: :meth:`due` returns each socket whose ``expires_at`` is at or
    before ``now`` once, and forgets it; :meth:`set` replaces an earlier time
    (a refresh); :meth:`discard` forgets a socket that left.
    """

    def __init__(self) -> None:
        self._buckets: dict[int, set[T]] = {}

    def __len__(self) -> int:
        return sum(len(b) for b in self._buckets.values())

    def set(self, item: T, at: float) -> None:
        self.discard(item)
        item.expires_at = at
        self._buckets.setdefault(int(at // EXPIRY_BUCKET), set()).add(item)

    def discard(self, item: T) -> None:
        key = int(item.expires_at // EXPIRY_BUCKET)
        bucket = self._buckets.get(key)
        if bucket is not None:
            bucket.discard(item)
            if not bucket:
                del self._buckets[key]

    def due(self, now: float) -> list[T]:
        out: list[T] = []
        last = int(now // EXPIRY_BUCKET)
        for key in [k for k in self._buckets if k <= last]:
            bucket = self._buckets[key]
            for item in [i for i in bucket if i.expires_at <= now]:
                bucket.discard(item)
                out.append(item)
            if not bucket:
                del self._buckets[key]
        return out


class PingPhases:
    """Which sockets to ping now: one of ``PING_PHASES`` slices per tick, in turn.

    Every socket falls in exactly one phase (by its identity), so each is
    pinged once per ``PING_PHASES`` ticks.
    """

    def __init__(self) -> None:
        self.phase = 0

    def tick(self, items: Iterable[U]) -> Iterator[U]:
        """The items of the current phase; the next call takes the next phase."""
        phase, self.phase = self.phase, (self.phase + 1) % PING_PHASES
        return (i for i in items if (id(i) >> 4) % PING_PHASES == phase)
