"""The per-device push throttle: pushes sent to each device within a wall-clock minute.

What may live here: the Redis commands of the throttle counters.

Contract: :func:`count_pushes` adds one push to each device's counter of the
minute and returns the new counts, in one round trip. The counters are hints
that expire after two minutes: Redis losing them only lets a few more pushes
through. Raises only :class:`~tidings.core.errors.BusUnavailable`.
"""

from __future__ import annotations

from collections.abc import Sequence

import redis.asyncio as aioredis

from . import keys
from .errors import bus_edge

EXPIRE_SECONDS = 120


class Throttle:
    def __init__(self, r: aioredis.Redis):
        self._redis = r

    @bus_edge
    async def count_pushes(self, device_ids: Sequence[int], minute: int) -> list[int]:
        """Count one more push to each of ``device_ids`` in ``minute``; the counts after it."""
        if not device_ids:
            return []
        async with self._redis.pipeline(transaction=False) as pipe:
            for device_id in device_ids:
                key = keys.push_throttle(str(device_id), minute)
                pipe.incr(key)
                pipe.expire(key, EXPIRE_SECONDS)
            return (await pipe.execute())[::2]
