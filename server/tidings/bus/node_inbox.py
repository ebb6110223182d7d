"""The reader of one node's inbox stream (``keys.node_inbox``): XREAD BLOCK from the last id.

Contract: :meth:`NodeInbox.read` returns the event payloads after the last
entry it returned, in stream order, each once; the last id moves past an
entry as it is returned, so a dropped connection resumes where reading
stopped. A Redis failure raises :class:`~tidings.core.errors.BusUnavailable`
and moves nothing, and so does a read with no answer within its BLOCK plus
``SILENT_AFTER`` seconds (a connection gone silent without a reset: the
read is abandoned with its connection, and the next one opens a new one).
Entries may have been lost meanwhile (Redis restarted without its data),
which the caller must treat as "resync".
"""

from __future__ import annotations

import asyncio
import logging

import redis.asyncio as aioredis

from . import keys
from .errors import bus_edge

log = logging.getLogger(__name__)

#: Most entries taken by one read.
READ_COUNT = 512
#: Seconds past its BLOCK after which a read with no answer is given up.
SILENT_AFTER = 4.0


class NodeInbox:
    def __init__(self, blocking: aioredis.Redis, node_id: str, count: int = READ_COUNT):
        """``blocking``: a client without socket timeout (see :mod:`.connect`)."""
        self._r = blocking
        self._key = keys.node_inbox(node_id)
        self._field = keys.INBOX_EVENT.encode()
        self._count = count
        self.last_id = "0-0"

    @bus_edge
    async def read(self, block_ms: int) -> list[bytes]:
        """The next entries' payloads, waiting up to ``block_ms`` for one; [] if none came."""
        async with asyncio.timeout(block_ms / 1000 + SILENT_AFTER):
            answer = await self._r.xread({self._key: self.last_id}, count=self._count,
                                         block=block_ms)
        out: list[bytes] = []
        for _stream, entries in answer or ():
            for entry_id, fields in entries:
                self.last_id = entry_id.decode() if isinstance(entry_id, bytes) else entry_id
                payload = fields.get(self._field)
                if payload is None:
                    log.warning("dropped a bus entry without an event: %s", self.last_id)
                    continue
                out.append(payload)
        return out
