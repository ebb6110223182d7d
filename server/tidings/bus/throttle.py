"""The per-device push throttle: pushes sent to each device within a wall-clock minute.

What may live here: the Redis commands of the throttle counters.

Contract: :meth:`Throttle.count_pushes` adds one push to each device's counter of
the minute and returns the new counts, in one round trip (one script over one
hash per minute). The counters are hints that expire after two minutes: Redis
losing them only lets a few more pushes through. Raises only
:class:`~tidings.core.errors.BusUnavailable`.
"""

from __future__ import annotations

from collections.abc import Sequence

import redis.asyncio as aioredis

from . import keys
from .errors import bus_edge

EXPIRE_SECONDS = 120

# KEYS: the minute's hash; ARGV: device ids. Returns each device's count after this push.
_COUNT = f"""
local out = {{}}
for i, device in ipairs(ARGV) do
  out[i] = redis.call('HINCRBY', KEYS[1], device, 1)
end
redis.call('EXPIRE', KEYS[1], {EXPIRE_SECONDS})
return out
"""


class Throttle:
    def __init__(self, r: aioredis.Redis):
        self._count = r.register_script(_COUNT)

    @bus_edge
    async def count_pushes(self, device_ids: Sequence[int], minute: int) -> list[int]:
        """Count one more push to each of ``device_ids`` in ``minute``; the counts after it."""
        if not device_ids:
            return []
        return list(await self._count(keys=[keys.push_throttle(minute)], args=list(device_ids)))
