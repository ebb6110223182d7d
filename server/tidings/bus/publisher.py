"""Publishing events: each goes only to the inbox streams of nodes holding its users.

Contract: :meth:`Publisher.publish` returns once every routed part of its
events is on its node's stream (XADD, trimmed with approximate MAXLEN), each
node's parts in the order of the events, and says which users were online.
Presence lookup, routing and the XADDs are one Redis round trip: a script
(:data:`ROUTE`) that runs atomically, so no node joins or leaves halfway; the
caller's own node may be skipped (it delivered to its sockets itself). When
the previous call found no live node but the skipped one, the events are not
even encoded: the script is first asked, with nothing else, whether that is
still so (one small round trip), and only if not are they sent (a second).
It
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
#: tail, inbox tail, stream field, the node to skip ("" for none), the users of every
#: event's rows in order, joined by newlines (a user id holds no control character);
#: then per event its head, its tail and its rows joined by newlines (JSON text holds
#: none). Per live node but the skipped one: SMISMEMBER of every user (in chunks:
#: Lua's unpack is bounded), then one XADD per event with a held row. Returns the
#: users held anywhere it routed, after the number of live nodes but the skipped one
#: (with only the first seven arguments, a probe: that number alone). Few arguments,
#: whatever the number of recipients: the client encodes a handful of large strings,
#: not three per recipient.
ROUTE = """
local cutoff, maxlen = ARGV[1], ARGV[2]
local khead, kusers, kinbox, field, skip = ARGV[3], ARGV[4], ARGV[5], ARGV[6], ARGV[7]
local nodes, others = redis.call('ZRANGEBYSCORE', KEYS[1], cutoff, '+inf'), 0
for _, node in ipairs(nodes) do
  if node ~= skip then others = others + 1 end
end
if #ARGV == 7 then return {others} end
local function split(text)
  local out = {}
  for item in string.gmatch(text .. '\\n', '([^\\n]*)\\n') do out[#out + 1] = item end
  return out
end
local users, rows, online, found = nil, {}, {}, {others}
for _, node in ipairs(nodes) do
  if node ~= skip then
    users = users or split(ARGV[8])
    local n, held, any = #users, {}, false
    local ukey = khead .. node .. kusers
    for i = 1, n, 1000 do
      local flags = redis.call('SMISMEMBER', ukey, unpack(users, i, math.min(i + 999, n)))
      for j = 1, #flags do
        if flags[j] == 1 then held[i + j - 1] = true; any = true end
      end
    end
    if any then
      local stream = khead .. node .. kinbox
      local before = 0
      for pos = 9, #ARGV, 3 do
        rows[pos] = rows[pos] or split(ARGV[pos + 2])
        local parts = {}
        for r, row in ipairs(rows[pos]) do
          if held[before + r] then parts[#parts + 1] = row end
        end
        before = before + #rows[pos]
        if #parts > 0 then
          redis.call('XADD', stream, 'MAXLEN', '~', maxlen, '*', field,
                     ARGV[pos] .. table.concat(parts, ',') .. ARGV[pos + 1])
        end
      end
      for u in pairs(held) do
        if not online[users[u]] then online[users[u]] = true; found[#found + 1] = users[u] end
      end
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
        # per node skipped: live nodes but that one at the last call (none yet: unknown)
        self._others: dict[str, int] = {}

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
        head = [time.time() - presence.LIVENESS, self._maxlen, keys.NODE_HEAD,
                keys.USERS_TAIL, keys.INBOX_TAIL, keys.INBOX_EVENT, skip]
        if not evs:
            return set()
        if self._others.get(skip) == 0:  # alone last time: still? (then nothing to encode)
            [others] = await self._route(keys=[keys.NODES], args=head)
            self._others[skip] = others
            if others == 0:
                return set()
        users: list[str] = []
        tail: list[bytes] = []
        for event in evs:
            parts = events.encode_parts(event)
            users += parts.users
            tail += (parts.head, parts.tail, parts.rows)
        others, *found = await self._route(keys=[keys.NODES],
                                           args=[*head, "\n".join(users), *tail])
        self._others[skip] = others
        return {u.decode() if isinstance(u, bytes) else u for u in found}
