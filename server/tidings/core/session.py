"""The delivery session of one socket, sans I/O: events in, actions out.

In the spirit of the ``websockets`` library's protocol objects: a
:class:`Session` reads no clock, does no I/O and starts no task. The gateway
feeds it what happened (the socket joined, stored rows arrived, a fetch
failed, a live event came from the bus, Redis lost events, the socket closed)
and carries out the actions it returns, in order: :class:`Send` a frame,
:class:`Fetch` stored rows, :class:`Close` the socket.

The rule it owns, and nothing else does: on one socket each notification seq
is sent at most once and in strictly increasing order; once every fetch is
answered the socket holds every stored seq up to the highest seen (or a
``reset`` frame said where it resumes); a frame's counts are never older
(by version) than counts the socket was already shown.

Contracts:

- At most one :class:`Fetch` is outstanding. Until it is answered
  (:meth:`Session.fetched` or :meth:`Session.fetch_failed`), live events are
  held in arrival order; more than ``limit`` held closes the socket (1008).
- A gap larger than the replay bound is not fetched: a ``reset`` frame says
  the seq the socket now stands at, and live delivery resumes after it.
- After :meth:`Session.disconnected` (or a :class:`Close` action) every event is
  ignored.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any, NamedTuple

from .events import COUNTS, Delivery
from .protocol import (
    CLOSE_RESTART,
    CLOSE_SLOW,
    SLOW_CONSUMER,
    counts_frame,
    reset_frame,
    stored_frame,
    with_counts,
)
from .replies import Counts


class Send(NamedTuple):
    """Write this text frame (JSON) to the socket."""

    frame: bytes


class Fetch(NamedTuple):
    """Read the user's stored notifications with ``after`` < seq <= ``upto``.

    ``upto`` None means "up to the newest stored" (read the user's state too).
    If more than ``most`` seqs lie in that range the rows need not be read.
    Answer with :meth:`Session.rows` (any number of times, oldest first), then
    :meth:`Session.fetched`; or :meth:`Session.fetch_failed`.
    """

    after: int
    upto: int | None
    most: int


class Close(NamedTuple):
    """Close the socket with ``code``."""

    code: int
    reason: str


Action = Send | Fetch | Close

_JOINING, _LIVE, _FETCHING, _CLOSED = range(4)


class Session:
    """One socket's delivery state: the last seq sent, the counts shown, what is held."""

    __slots__ = ("_counts", "_held", "_limit", "_replay", "_resync", "_seq", "_state", "_upto")

    def __init__(self, limit: int):
        self._limit = limit  # live events held while joining or fetching
        self._replay = 0  # the replay bound, given by joined()
        self._state = _JOINING
        self._seq = 0
        self._counts = Counts(0, 0, 0)
        self._held: list[Delivery] | None = None
        self._upto: int | None = None  # bound of the outstanding fetch
        self._resync = False  # a resync is owed once the fetch in flight is answered

    @property
    def seq(self) -> int:
        """The last notification seq the socket was sent (or told of by a reset)."""
        return self._seq

    @property
    def holding(self) -> int:
        """Live events held until the outstanding fetch (or the join) is answered."""
        return len(self._held) if self._held is not None else 0

    @property
    def closed(self) -> bool:
        return self._state == _CLOSED

    # -- events ----------------------------------------------------------

    def joined(self, last_seq: int, counts: Counts, since: int | None,
               replay_limit: int) -> list[Action]:
        """The user's newest seq and counts, read after presence was registered.

        ``since`` is the last seq the client holds (None: a fresh client).
        """
        if self._state != _JOINING:
            return []
        self._replay = replay_limit
        self._counts = counts
        self._seq = last_seq
        out: list[Action] = [Send(counts_frame(counts))]
        if since is not None and since != last_seq:
            if since > last_seq or last_seq - since > replay_limit:
                out.append(Send(reset_frame(last_seq)))
            else:
                self._seq = since
                out.append(self._fetch(last_seq))
                return out
        self._resume(out)
        return out

    def rows(self, rows: Iterable[Mapping[str, Any]]) -> list[Action]:
        """Stored rows of the outstanding fetch, oldest first; those already sent are skipped."""
        if self._state != _FETCHING:
            return []
        out: list[Action] = []
        upto = self._upto
        for row in rows:
            seq = row["seq"]
            if seq <= self._seq or (upto is not None and seq > upto):
                continue
            out.append(Send(stored_frame(row, self._counts)))
            self._seq = seq
        return out

    def fetched(self, upto: int, counts: Counts | None = None) -> list[Action]:
        """The outstanding fetch is answered: every stored seq up to ``upto`` was given.

        ``counts`` are the user's counts read with ``upto`` (a fetch to the newest).
        """
        if self._state != _FETCHING:
            return []
        if self._upto is not None:
            upto = self._upto
        out: list[Action] = []
        if upto - self._seq > self._replay:
            out.append(Send(reset_frame(upto)))
        self._seq = max(self._seq, upto)
        if counts is not None and counts.version > self._counts.version:
            self._counts = counts
            out.append(Send(counts_frame(counts)))
        self._resume(out)
        return out

    def fetch_failed(self) -> list[Action]:
        """The outstanding fetch could not be answered: the socket closes for a resume."""
        if self._state != _FETCHING:
            return []
        return self._close(CLOSE_RESTART, "resume needed")

    def live(self, delivery: Delivery) -> list[Action]:
        """A live event from the bus: stored or live-only notification, counts, or
        preferences (sent as they come, like a live-only notification)."""
        if self._state == _CLOSED:
            return []
        if self._state != _LIVE:
            held = self._held if self._held is not None else []
            if len(held) >= self._limit:
                return self._close(CLOSE_SLOW, SLOW_CONSUMER)
            held.append(delivery)
            self._held = held
            return []
        out: list[Action] = []
        if not self._apply(delivery, out):
            self._held = [delivery]
        return out

    def resync(self) -> list[Action]:
        """Redis may have lost events: bring the socket up to what is stored."""
        if self._state == _LIVE:
            return [self._fetch(None)]
        if self._state != _CLOSED:
            self._resync = True
        return []

    def disconnected(self) -> list[Action]:
        """The socket is gone: forget what is held; later events are ignored."""
        self._state = _CLOSED
        self._held = None
        return []

    # -- inside ----------------------------------------------------------

    def _fetch(self, upto: int | None) -> Fetch:
        self._state = _FETCHING
        self._upto = upto
        return Fetch(self._seq, upto, self._replay)

    def _close(self, code: int, reason: str) -> list[Action]:
        self._state = _CLOSED
        self._held = None
        return [Close(code, reason)]

    def _resume(self, out: list[Action]) -> None:
        """Joined or fetched: an owed resync first, else the held events, in order."""
        self._upto = None
        if self._resync:
            self._resync = False
            out.append(self._fetch(None))
            return
        self._state = _LIVE
        held, self._held = self._held, None
        if held:
            self._run(held, out)

    def _run(self, items: list[Delivery], out: list[Action]) -> None:
        """Apply live events in order; one that needs a fetch is held with those after it."""
        for i, delivery in enumerate(items):
            if not self._apply(delivery, out):
                self._held = items[i:]
                return

    def _apply(self, d: Delivery, out: list[Action]) -> bool:
        """Send what ``d`` calls for; False if a fetch must come first (``d`` is not done)."""
        if d.kind == COUNTS:
            self._newer_counts(d.counts, out, d.frame)
            return True
        if d.seq is None:  # live-only: no seq, no counts, no order to keep
            out.append(Send(d.frame))
            return True
        if d.seq <= self._seq:  # sent already; its counts may still be news
            self._newer_counts(d.counts, out)
            return True
        gap = d.seq - 1 - self._seq
        if gap > self._replay:
            out.append(Send(reset_frame(d.seq - 1)))
        elif gap > 0:
            out.append(self._fetch(d.seq - 1))
            return False
        frame = d.frame
        if d.counts is not None:
            if d.counts.version >= self._counts.version:
                self._counts = d.counts
            else:
                frame = with_counts(frame, self._counts)
        out.append(Send(frame))
        self._seq = d.seq
        return True

    def _newer_counts(self, counts: Counts | None, out: list[Action],
                      frame: bytes | None = None) -> None:
        if counts is not None and counts.version > self._counts.version:
            self._counts = counts
            out.append(Send(frame if frame is not None else counts_frame(counts)))
