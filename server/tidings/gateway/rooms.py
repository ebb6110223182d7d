"""Rooms: the sockets of each user on this node, as plain data.

A room is a tuple, not a set: most users have one socket (a set costs 216
bytes). Contract: a socket is in at most one room, its user's; a user with
no socket has no room.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from typing import Generic, Protocol, TypeVar


class Member(Protocol):
    user_id: str


T = TypeVar("T", bound=Member)


class Rooms(Generic[T]):
    def __init__(self) -> None:
        self._rooms: dict[str, tuple[T, ...]] = {}

    def __contains__(self, user_id: object) -> bool:
        return user_id in self._rooms

    def __len__(self) -> int:
        """Users with a socket here."""
        return len(self._rooms)

    def socket_count(self) -> int:
        """Sockets here (counted when asked: nothing is kept per connect)."""
        return sum(map(len, self._rooms.values()))

    def users(self) -> list[str]:
        return list(self._rooms)

    def size(self, user_id: str) -> int:
        return len(self._rooms.get(user_id, ()))

    def of(self, user_id: str) -> tuple[T, ...]:
        return self._rooms.get(user_id, ())

    def by_user(self) -> Mapping[str, tuple[T, ...]]:
        """Each user's room, live (not a copy): for loops over many users, read only."""
        return self._rooms

    def sockets(self) -> Iterator[T]:
        """Every socket here (a snapshot: rooms may change while it is used)."""
        return (s for room in tuple(self._rooms.values()) for s in room)

    def add(self, sock: T) -> int:
        """Add ``sock`` to its user's room; the room's size now."""
        room = self._rooms[sock.user_id] = (*self._rooms.get(sock.user_id, ()), sock)
        return len(room)

    def remove(self, sock: T) -> bool:
        """Take ``sock`` out; True if that emptied its user's room (the user left the node)."""
        room = self._rooms.get(sock.user_id)
        if room is None or sock not in room:
            return False
        rest = tuple(s for s in room if s is not sock)
        if rest:
            self._rooms[sock.user_id] = rest
            return False
        del self._rooms[sock.user_id]
        return True
