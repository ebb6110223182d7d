"""The delivery session with no event loop: random interleavings against the rule it owns.

A model world stores notifications (some later removed), publishes their live
events onto a bus that loses, duplicates and reorders them, answers fetches
late, partly, with rows the socket already has, or not at all, and resyncs.
Every frame the session asks to send is checked as it comes.
"""

from __future__ import annotations

import datetime as dt
import uuid

import orjson
import pytest
from hypothesis import HealthCheck, event, given, settings
from hypothesis import strategies as st

from tidings.core import events
from tidings.core.replies import CONTENT_FIELDS, Counts
from tidings.core.session import Close, Fetch, Send, Session

USER = "u1"
NOW = dt.datetime(2026, 1, 1, tzinfo=dt.UTC)


def counts(version: int) -> Counts:
    """Counts whose total shows their version, so frames reveal the version they carry."""
    return Counts(total=version, unread=0, version=version)


def content(message: str) -> dict:
    return {**dict.fromkeys(CONTENT_FIELDS), "message": message,
            "created_at": NOW, "updated_at": NOW}


def stored(seq: int, version: int) -> events.Delivery:
    c = counts(version)
    event = events.notification_event(
        content(f"n{seq}"), [[USER, seq, str(uuid.uuid4()), seq, c.total, c.unread, c.version]],
        None)
    return next(events.deliveries(event))


def live_only() -> events.Delivery:
    event = events.notification_event(
        content("ping"), [[USER, None, str(uuid.uuid4()), None, None, None, None]], None)
    return next(events.deliveries(event))


def counts_update(version: int) -> events.Delivery:
    return next(events.deliveries(events.counts_event(USER, counts(version))))


def row(seq: int) -> dict:
    return {**content(f"n{seq}"), "id": seq, "uid": uuid.uuid4(), "seq": seq, "user_id": USER,
            "status": "ACTIVE", "read_at": None}


class Socket:
    """What the client sees, checked frame by frame."""

    def __init__(self) -> None:
        self.seqs: list[int] = []
        self.resets: list[int] = []
        self.version = -1
        self.after_reset = False
        self.closed: int | None = None
        self.live_only = 0

    def take(self, frame: bytes, removed: set[int]) -> None:
        assert self.closed is None, "a frame after close"
        message = orjson.loads(frame)
        kind = message["type"]
        if kind == "reset":
            assert not self.seqs or message["seq"] >= self.seqs[-1]
            self.resets.append(message["seq"])
            return
        if "total_notifications" in message:
            assert message["total_notifications"] >= self.version, "counts went back"
            self.version = message["total_notifications"]
        if kind == "counts":
            return
        assert kind == "notification"
        seq = message["notification"]["seq"]
        if seq is None:
            self.live_only += 1
            return
        floor = max([*self.seqs[-1:], *self.resets[-1:]], default=None)
        if floor is not None:
            assert seq > floor, f"seq {seq} after {floor}: twice or backwards"
            skipped = set(range(floor + 1, seq)) - removed
            assert not skipped, f"seqs {sorted(skipped)} skipped before {seq}"
        self.seqs.append(seq)


class World:
    """The store, the bus and one session, driven step by step."""

    def __init__(self, hold: int, replay: int) -> None:
        self.session = Session(hold)
        self.replay = replay
        self.last = 0  # newest stored seq
        self.version = 0
        self.removed: set[int] = set()
        self.bus: list[events.Delivery] = []
        self.fetch: Fetch | None = None
        self.joined = False
        self.base: int | None = None  # what the client held before joining
        self.high = 0  # highest seq the session was told of
        self.socket = Socket()
        self.fetches = 0

    def apply(self, actions: list) -> None:
        for action in actions:
            if isinstance(action, Send):
                self.socket.take(action.frame, self.removed)
            elif isinstance(action, Fetch):
                assert self.fetch is None, "a second fetch while one is outstanding"
                assert action.upto is None or action.after <= action.upto
                self.fetch = action
                self.fetches += 1
            else:
                assert isinstance(action, Close)
                self.socket.closed = action.code
                self.fetch = None

    def publish(self, fate: int) -> None:
        self.last += 1
        self.version += 1
        self._route(stored(self.last, self.version), fate)

    def _route(self, delivery: events.Delivery, fate: int) -> None:
        # fate 0: lost; 1: once; 2: twice
        self.bus.extend([delivery] * fate)

    def join(self, since: int | None) -> None:
        self.joined = True
        self.base = since if since is not None and since <= self.last else self.last
        self.high = max(self.high, self.last)
        self.apply(self.session.joined(self.last, counts(self.version), since, self.replay))

    def deliver(self, index: int, keep: bool) -> None:
        if not self.bus:
            return
        index %= len(self.bus)
        delivery = self.bus[index] if keep else self.bus.pop(index)
        if delivery.seq is not None:
            self.high = max(self.high, delivery.seq)
        self.apply(self.session.live(delivery))

    def answer(self, fail: bool, behind: int, cut: int) -> None:
        fetch, self.fetch = self.fetch, None
        if fetch is None:
            return
        if fail:
            self.apply(self.session.fetch_failed())
            return
        upto = self.last if fetch.upto is None else fetch.upto
        if fetch.upto is None:
            self.high = max(self.high, upto)
        if upto - fetch.after <= fetch.most:
            seqs = [s for s in range(max(0, fetch.after - behind) + 1, upto + 1)
                    if s not in self.removed]
            cut %= len(seqs) + 1  # rows come in two parts
            self.apply(self.session.rows([row(s) for s in seqs[:cut]]))
            self.apply(self.session.rows([row(s) for s in seqs[cut:]]))
        self.apply(self.session.fetched(upto, counts(self.version) if fetch.upto is None
                                        else None))

    def settle(self) -> None:
        """Join if not yet, then answer every fetch; then the socket must hold everything."""
        if not self.joined:
            self.join(None)
        for _ in range(1000):
            if self.fetch is None:
                break
            self.answer(False, 0, 0)
        assert self.fetch is None
        if self.socket.closed is not None:
            return
        have = set(self.socket.seqs)
        covered = max([*self.socket.resets, self.base or 0])
        missing = {s for s in range(covered + 1, self.high + 1)
                   if s not in have and s not in self.removed}
        assert not missing, f"missing {sorted(missing)} (high {self.high})"


OPS = ["publish", "publish", "publish", "deliver", "deliver", "deliver", "dup", "answer",
       "answer", "resync", "remove", "counts", "live_only", "close"]
#: One integer per step (few draws keep a run fast): the operation and its arguments.
STEPS = st.lists(st.integers(0, 2**24), min_size=30, max_size=60)


def decode(step: int) -> tuple[str, int, int, int]:
    """(operation, n in 0..40, k in 0..3, cut in 0..50) of one step."""
    return (OPS[step % len(OPS)], (step >> 4) % 41, (step >> 10) % 4, (step >> 12) % 51)


@settings(max_examples=100, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(steps=STEPS, join_at=st.integers(0, 20), hold=st.integers(3, 40),
       replay=st.integers(1, 12), since=st.one_of(st.none(), st.integers(0, 20)),
       closes=st.booleans())
def test_each_seq_once_in_order_and_nothing_missing(steps, join_at, hold, replay, since, closes):
    w = World(hold, replay)
    for i, (op, n, k, cut) in enumerate(map(decode, steps)):
        if i == join_at:
            w.join(since)
        if op == "publish":
            w.publish(1 if k == 3 else k)
        elif op == "deliver":
            w.deliver(n, keep=False)
        elif op == "dup":
            w.deliver(n, keep=True)
        elif op == "answer" and w.joined:
            w.answer(fail=(n == 17), behind=k, cut=cut)
        elif op == "resync":  # the promise: up to what is stored now, lost events included
            w.high = max(w.high, w.last)
            w.apply(w.session.resync())
        elif op == "remove" and w.last:
            w.removed.add(n % w.last + 1)
            w.version += 1
            w._route(counts_update(w.version), min(k, 2))
        elif op == "counts":
            w.version += 1
            w._route(counts_update(w.version), min(k, 2))
        elif op == "live_only":
            w._route(live_only(), 1)
        elif op == "close" and closes and n == 17:
            w.apply(w.session.disconnected())
            w.socket.closed = 1000
        assert w.session.holding <= hold + 1
    event(f"closed={w.socket.closed} high={min(w.high, 10)} fetches={min(w.fetches, 5)}")
    if w.socket.closed is None:
        w.settle()


# -- each event, by example ------------------------------------------------


def frames(actions: list) -> list[dict]:
    return [orjson.loads(a.frame) for a in actions if isinstance(a, Send)]


def kinds(actions: list) -> list[str]:
    return [type(a).__name__ if not isinstance(a, Send) else orjson.loads(a.frame)["type"]
            for a in actions]


def test_joined_fresh_sends_counts_then_held_events_in_order():
    s = Session(10)
    assert s.live(stored(4, 4)) == [] and s.live(stored(3, 3)) == []  # before the state read
    out = s.joined(3, counts(3), None, 100)
    assert kinds(out) == ["counts", "notification"]
    assert frames(out)[1]["notification"]["seq"] == 4 and s.seq == 4


def test_joined_with_since_fetches_the_range_and_holds_live_meanwhile():
    s = Session(10)
    out = s.joined(5, counts(5), 2, 100)
    assert out[1] == Fetch(2, 5, 100)
    assert s.live(stored(6, 6)) == []
    assert [f["notification"]["seq"] for f in frames(s.rows([row(1), row(3), row(4)]))] == [3, 4]
    out = s.fetched(5)
    assert [f["notification"]["seq"] for f in frames(out)] == [6]


@pytest.mark.parametrize(("since", "last", "reset"), [(9, 3, 3), (0, 500, 500)])
def test_joined_too_far_or_ahead_gets_a_reset(since, last, reset):
    out = Session(10).joined(last, counts(1), since, 100)
    assert frames(out)[1] == {"type": "reset", "seq": reset}


def test_live_gap_is_filled_once_even_with_a_second_gap_in_the_same_batch():
    s = Session(10)
    s.joined(0, counts(0), None, 100)
    assert s.live(stored(2, 2)) == [Fetch(0, 1, 100)]
    assert s.live(stored(3, 3)) == [], "no second fetch: held"
    out = s.rows([row(1)]) + s.fetched(1)
    assert [f["notification"]["seq"] for f in frames(out)] == [1, 2, 3]
    assert s.live(stored(2, 2)) == [] and s.live(stored(1, 1)) == []


def test_live_gap_beyond_the_replay_bound_resets():
    s = Session(10)
    s.joined(0, counts(0), None, 5)
    out = s.live(stored(20, 20))
    assert [f["type"] for f in frames(out)] == ["reset", "notification"]
    assert frames(out)[0]["seq"] == 19 and s.seq == 20


def test_fetch_failed_closes_for_a_resume():
    s = Session(10)
    s.joined(0, counts(0), None, 100)
    s.live(stored(3, 3))
    assert s.fetch_failed() == [Close(1012, "resume needed")]
    assert s.closed and s.live(stored(4, 4)) == []


def test_counts_never_go_back_and_stale_notification_counts_are_replaced():
    s = Session(10)
    s.joined(0, counts(5), None, 100)
    assert s.live(counts_update(4)) == []
    assert frames(s.live(counts_update(7))) == [{"type": "counts", **counts(7).as_dict()}]
    (note,) = frames(s.live(stored(1, 6)))  # published before the counts change it missed
    assert note["total_notifications"] == 7 and note["notification"]["seq"] == 1


def test_duplicate_with_newer_counts_shows_the_counts_only():
    s = Session(10)
    s.joined(0, counts(0), None, 100)
    s.live(stored(2, 2))
    s.rows([row(1), row(2)])
    s.fetched(2)
    assert s.seq == 2
    assert frames(s.live(stored(2, 9))) == [{"type": "counts", **counts(9).as_dict()}]


def test_live_only_notifications_pass_without_a_seq():
    s = Session(10)
    s.joined(0, counts(0), None, 100)
    assert kinds(s.live(live_only())) == ["notification"] and s.seq == 0


def test_resync_fetches_to_the_newest_and_shows_its_counts():
    s = Session(10)
    s.joined(2, counts(2), None, 100)
    assert s.resync() == [Fetch(2, None, 100)]
    assert s.resync() == [], "one fetch at a time"
    out = s.rows([row(3)]) + s.fetched(4, counts(6))
    assert kinds(out) == ["notification", "counts", "Fetch"]
    assert out[-1] == Fetch(4, None, 100), "the resync asked meanwhile is owed"
    assert s.fetched(4, counts(6)) == []


def test_resync_with_more_missed_than_the_bound_resets():
    s = Session(10)
    s.joined(0, counts(0), None, 3)
    s.resync()
    assert frames(s.fetched(50, counts(50)))[0] == {"type": "reset", "seq": 50}


def test_holding_more_than_the_limit_closes_as_slow():
    s = Session(2)
    s.joined(0, counts(0), 0, 100)  # since == last: live at once
    s.live(stored(5, 5))
    assert s.live(counts_update(6)) == []
    assert s.live(counts_update(7)) == [Close(1008, "slow consumer")]


def test_disconnected_ignores_everything_after():
    s = Session(2)
    assert s.disconnected() == []
    assert s.joined(0, counts(0), None, 10) == [] and s.live(stored(1, 1)) == []
    assert s.resync() == [] and s.rows([row(1)]) == [] and s.fetched(1) == []
