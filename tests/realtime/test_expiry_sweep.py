"""The hub's plain data: token-expiry buckets, ping phases and rooms, without sockets."""

from __future__ import annotations

from tidings.gateway.rooms import Rooms
from tidings.gateway.timing import EXPIRY_BUCKET, PING_PHASES, Expiries, PingPhases


class Sock:
    __slots__ = ("expires_at", "user_id")

    def __init__(self, user_id: str = "u"):
        self.user_id = user_id
        self.expires_at = 0.0


def test_expiry_sweep_returns_due_sockets_only_once():
    exp: Expiries[Sock] = Expiries()
    due, refreshed, gone = Sock(), Sock(), Sock()
    now = 1_000_000.0
    for s in (due, refreshed, gone):
        exp.set(s, now + 5)
    exp.set(refreshed, now + 3600)  # a refresh replaces the old expiry
    exp.discard(gone)  # a socket that left is forgotten, not kept until its expiry
    assert len(exp) == 2
    assert exp.due(now + 4) == []
    assert exp.due(now + 5) == [due]
    assert exp.due(now + 5) == [], "returned once"
    assert exp.due(now + 3600 + EXPIRY_BUCKET) == [refreshed] and len(exp) == 0


def test_ping_phases_cover_every_socket_once_per_round():
    socks = [Sock() for _ in range(200)]
    phases = PingPhases()
    seen = [s for _ in range(PING_PHASES) for s in phases.tick(socks)]
    assert sorted(map(id, seen)) == sorted(map(id, socks))
    assert phases.phase == 0


def test_rooms_hold_each_users_sockets_and_say_when_a_user_left():
    rooms: Rooms[Sock] = Rooms()
    a1, a2, b = Sock("a"), Sock("a"), Sock("b")
    assert [rooms.add(s) for s in (a1, a2, b)] == [1, 2, 1]
    assert rooms.of("a") == (a1, a2) and rooms.size("b") == 1 and "a" in rooms
    assert sorted(rooms.users()) == ["a", "b"] and len(list(rooms.sockets())) == 3
    assert rooms.remove(a1) is False and rooms.remove(a1) is False
    assert rooms.remove(a2) is True and "a" not in rooms and rooms.of("a") == ()
