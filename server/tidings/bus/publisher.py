"""Publishing events: each goes only to the inbox streams of nodes holding its users.

Contract: :meth:`Publisher.publish` returns once every routed part of its
events is on its node's stream (XADD, trimmed with approximate MAXLEN), each
node's parts in the order of the events, and says which users were online.
Presence lookup, routing and the XADDs are one Redis round trip: a script
(:data:`ROUTE`) that runs atomically, so no node joins or leaves halfway; the
caller's own node may be skipped (it delivered to its sockets itself). It
raises :class:`~tidings.core.errors.BusUnavailable` on any Redis error (then
nothing or, if Redis died mid-script, part of the events is on the bus);
callers keep the outbox rows.

The script names each node's keys from the live-node set it reads, so on Redis
Cluster it would touch slots it did not declare: Tidings runs on one Redis
(primary and replicas), as ``docs/design.md`` states.
"""

from __future__ import annotations

import time
from collections.abc import Sequence
from typing import Any

import redis.asyncio as aioredis

from ..core import events
from . import keys, presence
from .errors import bus_edge

INBOX_MAXLEN = 100_000

#: KEYS[1]: the live-node set. ARGV: liveness cutoff, MAXLEN, node key head, users
#: tail, inbox tail, stream field, the node to skip ("" for none), n users, the n
#: users; then per event: its row count, head, tail and per row the (1-based) index
#: of its user and its text. Per live node but the skipped one: SMISMEMBER of every
#: user (in chunks: Lua's unpack is bounded), then one XADD per event with a held
#: row. Returns the users held anywhere it routed.
ROUTE = """
local cutoff, maxlen = ARGV[1], ARGV[2]
local khead, kusers, kinbox, field, skip = ARGV[3], ARGV[4], ARGV[5], ARGV[6], ARGV[7]
local n = tonumber(ARGV[8])
local first = 9 + n
local online, found = {}, {}
for _, node in ipairs(redis.call('ZRANGEBYSCORE', KEYS[1], cutoff, '+inf')) do
  local held, any = {}, false
  local ukey = khead .. node .. kusers
  for i = 1, (node == skip) and 0 or n, 1000 do
    local flags = redis.call('SMISMEMBER', ukey, unpack(ARGV, 8 + i, 8 + math.min(i + 999, n)))
    for j = 1, #flags do
      if flags[j] == 1 then held[i + j - 1] = true; any = true end
    end
  end
  if any then
    local stream = khead .. node .. kinbox
    local pos = first
    while pos <= #ARGV do
      local rows, head, tail = tonumber(ARGV[pos]), ARGV[pos + 1], ARGV[pos + 2]
      pos = pos + 3
      local parts = {}
      for r = pos, pos + 2 * rows - 1, 2 do
        if held[tonumber(ARGV[r])] then parts[#parts + 1] = ARGV[r + 1] end
      end
      pos = pos + 2 * rows
      if #parts > 0 then
        redis.call('XADD', stream, 'MAXLEN', '~', maxlen, '*', field,
                   head .. table.concat(parts, ',') .. tail)
      end
    end
    for u in pairs(held) do
      if not online[u] then online[u] = true; found[#found + 1] = ARGV[8 + u] end
    end
  end
end
return found
"""


class Publisher:
    def __init__(self, r: aioredis.Redis, maxlen: int = INBOX_MAXLEN):
        self._r = r
        self._maxlen = maxlen
        self._route = r.register_script(ROUTE)

    @bus_edge
    async def ping(self) -> None:
        """Raises :class:`~tidings.core.errors.BusUnavailable` unless Redis answers."""
        await self._r.ping()

    @bus_edge
    async def publish(self, evs: Sequence[dict[str, Any]], *, skip: str = "") -> set[str]:
        """Route ``evs`` to the nodes of their users, in order; returns the users found online.

        One round trip (the :data:`ROUTE` script) whatever the number of events and nodes.
        The node ``skip`` (the caller's own, which delivered them itself) gets nothing,
        and its users are not in the answer.
        """
        users: dict[str, int] = {}
        tail: list[Any] = []
        for event in evs:
            parts = events.encode_parts(event)
            tail += (len(parts.rows), parts.head, parts.tail)
            for user, row in parts.rows:
                tail += (users.setdefault(user, len(users) + 1), row)
        if not users:
            return set()
        found = await self._route(keys=[keys.NODES], args=[
            time.time() - presence.LIVENESS, self._maxlen, keys.NODE_HEAD, keys.USERS_TAIL,
            keys.INBOX_TAIL, keys.INBOX_EVENT, skip, len(users), *users, *tail])
        return {u.decode() if isinstance(u, bytes) else u for u in found}
