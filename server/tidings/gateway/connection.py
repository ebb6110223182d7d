"""One authenticated socket: its delivery session, what waits to be sent, its bounded queue.

Contracts: frames are written in the order they were queued. A frame for a
socket with nothing queued and a transport buffer below ``DIRECT_BELOW``
bytes is written at once (framed here: server frames are unmasked and
uncompressed); otherwise it is queued for one writer task that exists only
while frames wait (an idle socket holds no task). When more than ``limit``
frames wait, the socket is closed with 1008 (slow consumer) and its queue
dropped, so memory per socket stays bounded: the queue, plus a transport
buffer that only grows by one frame past ``DIRECT_BELOW``. What is sent, and
in which order, is decided by the socket's :class:`~tidings.core.session.Session`;
a replay longer than the queue waits for it with :meth:`Connection.drain`.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections import deque
from collections.abc import Coroutine
from typing import Any

from aiohttp import WSMsgType, web

from ..core import protocol
from ..core.session import Session

log = logging.getLogger(__name__)

#: Write a frame straight to the transport while its buffer holds fewer bytes than this.
DIRECT_BELOW = 64 * 1024

#: An empty ping (RFC 6455 section 5.5.2), written between whole frames.
PING_FRAME = b"\x89\x00"

_background: set[asyncio.Task[None]] = set()


def spawn(coro: Coroutine[Any, Any, None]) -> asyncio.Task[None]:
    """Run ``coro`` in the background, keeping a reference until it is done."""
    task = asyncio.create_task(coro)
    _background.add(task)
    task.add_done_callback(_background.discard)
    return task


def text_frame(payload: bytes) -> bytes:
    """A final, unmasked, uncompressed text frame (RFC 6455 section 5.2) around ``payload``."""
    n = len(payload)
    if n < 126:
        return bytes((0x81, n)) + payload
    if n < 65536:
        return bytes((0x81, 126)) + n.to_bytes(2, "big") + payload
    return bytes((0x81, 127)) + n.to_bytes(8, "big") + payload


class Connection:
    __slots__ = ("awaiting_pong", "budget", "closing", "drained", "expires_at", "limit",
                 "pending", "session", "slow", "transport", "user_id", "writer", "ws")

    def __init__(self, ws: web.WebSocketResponse, transport: asyncio.Transport | None,
                 user_id: str, limit: int):
        self.ws = ws
        self.transport = transport
        self.user_id = user_id
        self.limit = limit
        self.session = Session(limit)
        # Frames waiting for the writer; a deque only while some wait (an empty one is 760 B).
        self.pending: deque[bytes] | None = None
        self.writer: asyncio.Task[None] | None = None
        # The client messages' token bucket, made when the client first sends one.
        self.budget: protocol.MessageBudget | None = None
        self.expires_at = 0.0  # the token's expiry; the hub closes the socket then
        self.drained: asyncio.Future[None] | None = None
        self.closing = False
        self.slow = False  # closed as a slow consumer (counted by the hub when it leaves)
        self.awaiting_pong = False  # pinged, and nothing heard from the peer since

    @property
    def queued(self) -> int:
        """Frames waiting to be written."""
        return len(self.pending) if self.pending is not None else 0

    def send(self, frame: bytes) -> None:
        """Queue one text frame; a full queue closes the socket as a slow consumer."""
        if self.closing:
            return
        t = self.transport
        if (self.writer is None and t is not None and not t.is_closing()
                and t.get_write_buffer_size() < DIRECT_BELOW):
            t.write(text_frame(frame))
            return
        if self.pending is None:
            self.pending = deque()
        elif len(self.pending) >= self.limit:
            self.abort(protocol.CLOSE_SLOW, protocol.SLOW_CONSUMER)
            return
        self.pending.append(frame)
        if self.writer is None:
            self.writer = asyncio.create_task(self._write())

    async def drain(self, below: int, wait: float) -> None:
        """Wait until at most ``below`` frames are queued; a consumer that takes longer
        than ``wait`` seconds is closed as slow."""
        if self.queued <= below or self.closing:
            return
        if self.drained is None:
            self.drained = asyncio.get_running_loop().create_future()
        try:
            await asyncio.wait_for(asyncio.shield(self.drained), wait)
        except TimeoutError:
            self.abort(protocol.CLOSE_SLOW, protocol.SLOW_CONSUMER)

    def _wake(self) -> None:
        if self.drained is not None and not self.drained.done():
            self.drained.set_result(None)
        self.drained = None

    async def _write(self) -> None:
        try:
            while self.pending and not self.closing:
                await self.ws.send_frame(self.pending.popleft(), WSMsgType.TEXT)
                if self.drained is not None and self.queued <= self.limit // 4:
                    self._wake()
        except (ConnectionError, RuntimeError):
            pass
        finally:
            self.pending = None
            self.writer = None
            self._wake()

    def ping(self) -> None:
        """Ping the peer; one that sent nothing since the previous ping is cut off as dead."""
        t = self.transport
        if self.closing or t is None or t.is_closing():
            return
        if self.awaiting_pong:
            t.abort()  # a vanished peer would never take a close frame
            return
        self.awaiting_pong = True
        t.write(PING_FRAME)

    def abort(self, code: int, reason: str) -> None:
        """Close with ``code`` without waiting (from callbacks and dispatch)."""
        if not self.closing:
            spawn(self.close(code, reason))

    async def close(self, code: int, reason: str) -> None:
        """Drop what was queued and close with ``code``; at most once."""
        if self.closing:
            return
        self.closing = True
        self.slow = code == protocol.CLOSE_SLOW and reason == protocol.SLOW_CONSUMER
        self.pending = None
        self._wake()
        self.session.disconnected()
        try:
            await asyncio.wait_for(self.ws.close(code=code, message=reason.encode()), 5)
        except Exception:
            # a peer that reads nothing never takes the close frame: cut the connection
            if self.transport is not None:
                with contextlib.suppress(Exception):
                    self.transport.abort()
