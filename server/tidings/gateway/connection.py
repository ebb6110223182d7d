"""One socket after its opening handshake: a lean protocol object on the transport itself.

Once a WebSocket upgrade is accepted, aiohttp lets go of the connection
(:func:`tidings.gateway.ws.take_over`) and the socket is only a
:class:`Connection`: an :class:`asyncio.Protocol` with its delivery session,
its frame reader and what waits to be sent. An idle socket holds no task, no
coroutine and no timer (pings and token expiries are the hub's sweeps).

Contracts:

- The 101 answer goes out with the first frame (the counts, or a close), in
  one write; nothing is written before it.
- Frames are written in the order they were queued: at once while the
  transport takes them; once it asks to pause (its buffer over
  ``HIGH_WATER`` bytes) they wait, and more than ``limit`` waiting closes the
  socket with 1008 (slow consumer). Memory per socket stays bounded: the
  transport buffer, one frame past ``HIGH_WATER``, and ``limit`` frames.
- Client messages are handled one at a time, in order; while one needs I/O
  (an auth, a mark_read, a refresh) the socket does not read. Frames that
  break the protocol close it with their code (see :mod:`tidings.core.frames`);
  a binary frame closes it with 1007; a ping is answered; any frame at all
  shows the peer is alive.
- Closing sends the close frame once, then waits for the peer's: a peer that
  sends none and reads nothing for ``CLOSE_WAIT`` seconds is cut off. A close
  from the peer is answered with its code, then the connection is closed.
- What is sent, and in which order, is decided by the socket's
  :class:`~tidings.core.session.Session`; a replay longer than the queue waits
  for it with :meth:`Connection.drain`.
"""

from __future__ import annotations

import asyncio
import logging
from collections import deque
from collections.abc import Awaitable, Coroutine
from typing import Any, Protocol

from ..core import frames, protocol
from ..core.frames import FrameError, Message
from ..core.session import Session

log = logging.getLogger(__name__)

#: The transport asks to pause writing past this many buffered bytes; frames then wait.
HIGH_WATER = 64 * 1024
#: Seconds a closing socket waits for the peer's close frame while nothing moves.
CLOSE_WAIT = 5.0

# Phases of a socket.
_JOINING, _AUTH, _OPEN, _CLOSING, _GONE = range(5)

_background: set[asyncio.Task[None]] = set()


def spawn(coro: Coroutine[Any, Any, None]) -> asyncio.Task[None]:
    """Run ``coro`` in the background, keeping a reference until it is done."""
    task = asyncio.create_task(coro)
    _background.add(task)
    task.add_done_callback(_background.discard)
    return task


class Owner(Protocol):
    """What the gateway does with a socket's messages and its end."""

    def on_auth(self, conn: Connection, data: bytes) -> Awaitable[None] | None:
        """The first text message of a socket that waits for its auth message."""

    def on_text(self, conn: Connection, data: bytes) -> Awaitable[None] | None:
        """A text message of an admitted socket; an awaitable if it needs I/O."""

    def left(self, conn: Connection) -> None:
        """The connection is gone."""


class Connection(asyncio.Protocol):
    __slots__ = ("awaiting_pong", "budget", "closing", "drained", "expires_at", "greeting",
                 "limit", "owner", "paused", "pending", "phase", "reader", "session",
                 "slow", "timer", "transport", "user_id")

    def __init__(self, owner: Owner, limit: int, max_frame: int, greeting: bytes):
        self.owner = owner
        self.transport: asyncio.Transport | None = None
        self.user_id = ""  # set once admitted
        self.limit = limit
        self.session = Session(limit)
        self.reader = frames.FrameReader(max_frame)
        self.greeting: bytes | None = greeting  # the 101 answer, written with the first frame
        self.phase = _JOINING
        # Frames waiting for the transport; a deque only while some wait (an empty one is 760 B).
        self.pending: deque[bytes] | None = None
        self.paused = False  # the transport asked us to stop writing
        # The client messages' token bucket, made when the client first sends one.
        self.budget: protocol.MessageBudget | None = None
        self.expires_at = 0.0  # the token's expiry; the hub closes the socket then
        self.drained: asyncio.Future[None] | None = None
        self.timer: asyncio.TimerHandle | None = None  # the auth or the close wait only
        self.closing = False
        self.slow = False  # closed as a slow consumer (counted by the hub when it leaves)
        self.awaiting_pong = False  # pinged, and nothing heard from the peer since

    # -- the connection's life -----------------------------------------------------

    def attach(self, transport: asyncio.Transport, buffered: bytes) -> None:
        """Take over ``transport``; ``buffered``: bytes the client sent after its request.

        The socket does not read until :meth:`open` or :meth:`wait_for_auth`.
        """
        self.transport = transport
        transport.set_write_buffer_limits(high=HIGH_WATER)
        transport.pause_reading()
        transport.set_protocol(self)
        if buffered:
            self.reader = frames.FrameReader(self.reader.max_size, buffered)

    def wait_for_auth(self, wait: float) -> None:
        """The token comes in the first message: send the 101 now, read, and close with
        4001 unless an auth message arrives within ``wait`` seconds."""
        self.phase = _AUTH
        self._write(b"")
        self.timer = asyncio.get_running_loop().call_later(
            wait, self.close, protocol.CLOSE_BAD_TOKEN, "no auth message in time")
        self._read()

    def open(self) -> None:
        """Admitted and joined: read the client's messages."""
        if self.phase in (_JOINING, _AUTH):
            self.phase = _OPEN
            self._read()

    def connection_lost(self, exc: Exception | None) -> None:
        self.phase = _GONE
        self.closing = True
        self.pending = None
        self._cancel_timer()
        self._wake()
        self.session.disconnected()
        self.owner.left(self)
        self.transport = None

    def pause_writing(self) -> None:
        self.paused = True

    def resume_writing(self) -> None:
        self.paused = False
        t = self.transport
        while self.pending and not self.paused and t is not None and not self.closing:
            t.write(frames.text_frame(self.pending.popleft()))
        if not self.pending:
            self.pending = None
        if self.queued <= self.limit // 4:
            self._wake()

    def settle(self) -> None:
        """After admission: a socket left neither open nor closing (admission failed
        unexpectedly) is closed with 1011."""
        if self.phase == _JOINING:
            self.close(protocol.CLOSE_INTERNAL, "internal error")

    # -- reading ----------------------------------------------------------------

    def data_received(self, data: bytes) -> None:
        self.awaiting_pong = False  # any frame shows the peer is there
        self._handle(data)

    def _read(self) -> None:
        """Handle what is buffered, then read on (unless a handler waits on I/O)."""
        if self._handle(b"") and self.transport is not None \
                and not self.transport.is_closing():
            self.transport.resume_reading()

    def _handle(self, data: bytes) -> bool:
        """Handle the messages in ``data``; False if one went off to do I/O (reading paused)."""
        try:
            messages = self.reader.feed(data)
        except FrameError as exc:  # the connection fails: close frame, then the end
            self.close(exc.code, exc.reason)
            if self.transport is not None:
                self.transport.close()
            return True
        return self._handle_messages(messages)

    def _handle_messages(self, messages: list[Message]) -> bool:
        for i, message in enumerate(messages):
            if self.phase == _GONE:
                return True
            work = self._handle_one(message)
            if work is not None:
                if self.transport is not None:
                    self.transport.pause_reading()
                spawn(self._after(work, messages[i + 1:]))
                return False
        return True

    def _handle_one(self, message: Message) -> Awaitable[None] | None:
        opcode = message.opcode
        if opcode == frames.CLOSE:
            self._closed_by_peer(message.data)
        elif self.phase == _CLOSING:
            pass  # waiting for the peer's close frame
        elif opcode == frames.TEXT:
            if self.phase == _AUTH:
                self._cancel_timer()
                self.phase = _JOINING
                return self.owner.on_auth(self, message.data)
            if self.phase == _OPEN:
                return self.owner.on_text(self, message.data)
        elif opcode == frames.PING:
            self._write(frames.pong_frame(message.data))
        elif opcode == frames.BINARY:
            self.close(protocol.CLOSE_BAD_FRAME, "binary frames are not part of the protocol")
        return None

    async def _after(self, work: Awaitable[None], rest: list[Message]) -> None:
        """Await a message's I/O, then handle the messages that came after it."""
        try:
            await work
        except Exception:
            log.exception("handling a client message failed")
            self.close(protocol.CLOSE_INTERNAL, "internal error")
        finally:
            self.settle()
        if self.phase in (_OPEN, _CLOSING) and self._handle_messages(rest):
            self._read()

    def _closed_by_peer(self, payload: bytes) -> None:
        """The peer's close frame: answered with its code (unless ours went first), then
        the connection is closed once the answer is out."""
        try:
            code = frames.close_code(payload)
        except FrameError as exc:
            code = exc.code
        if self.phase != _CLOSING:
            self.closing = True
            self.phase = _CLOSING
            self.pending = None
            self._wake()
            self.session.disconnected()
            self._write(frames.close_frame(code))
        t = self.transport
        if t is not None:
            t.close()
            self._cancel_timer()
            self._close_wait(t.get_write_buffer_size())

    # -- writing ------------------------------------------------------------------

    @property
    def queued(self) -> int:
        """Frames waiting to be written."""
        return len(self.pending) if self.pending is not None else 0

    def _write(self, data: bytes) -> None:
        t = self.transport
        if t is None or t.is_closing():
            return
        if self.greeting is not None:
            data, self.greeting = self.greeting + data, None
        t.write(data)

    def send(self, frame: bytes) -> None:
        """Queue one text frame; a full queue closes the socket as a slow consumer."""
        if self.closing:
            return
        if self.pending is None and not self.paused:
            t = self.transport
            if self.greeting is None and t is not None and not t.is_closing():
                t.write(frames.text_frame(frame))  # the usual case, without _write's call
            else:
                self._write(frames.text_frame(frame))
            return
        if self.pending is None:
            self.pending = deque()
        elif len(self.pending) >= self.limit:
            self.close(protocol.CLOSE_SLOW, protocol.SLOW_CONSUMER)
            return
        self.pending.append(frame)

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
            self.close(protocol.CLOSE_SLOW, protocol.SLOW_CONSUMER)

    def _wake(self) -> None:
        if self.drained is not None and not self.drained.done():
            self.drained.set_result(None)
        self.drained = None

    def ping(self) -> None:
        """Ping the peer; one that sent nothing since the previous ping is cut off as dead."""
        t = self.transport
        if self.phase != _OPEN or t is None or t.is_closing():
            return
        if self.awaiting_pong:
            t.abort()  # a vanished peer would never take a close frame
            return
        self.awaiting_pong = True
        t.write(frames.PING_FRAME)

    # -- closing ------------------------------------------------------------------

    def close(self, code: int, reason: str) -> None:
        """Drop what was queued, send a close frame with ``code`` and wait for the peer's;
        at most once."""
        if self.closing:
            return
        self.closing = True
        self.phase = _CLOSING
        self.slow = code == protocol.CLOSE_SLOW and reason == protocol.SLOW_CONSUMER
        self.pending = None
        self._cancel_timer()
        self._wake()
        self.session.disconnected()
        self._write(frames.close_frame(code, reason))
        if self.transport is not None:
            self._close_wait(self.transport.get_write_buffer_size())
            self._read()  # the peer's close frame must get in

    def _close_wait(self, unsent: int) -> None:
        self.timer = asyncio.get_running_loop().call_later(CLOSE_WAIT, self._close_waited,
                                                           unsent)

    def _close_waited(self, unsent: int) -> None:
        """Still not closed: close if all was written, wait on while the peer still takes
        what was, else cut the connection."""
        self.timer = None
        t = self.transport
        if t is None:
            return
        left = t.get_write_buffer_size()
        if left == 0:
            t.close()
        elif left < unsent:
            self._close_wait(left)
        else:
            t.abort()

    def _cancel_timer(self) -> None:
        if self.timer is not None:
            self.timer.cancel()
            self.timer = None
