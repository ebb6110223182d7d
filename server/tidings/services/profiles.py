"""Users' profiles (producer API): address, name, locale, timezone, and the address's state.

Contracts: a timezone is an IANA name this machine's time-zone database knows
(checked with :mod:`zoneinfo` when saved: a 400 ``invalid_timezone``
otherwise, nothing changed); :func:`zone` resolves a saved one for the
send-time decisions (UTC when there is none, or it is no longer known).
"""

from __future__ import annotations

import zoneinfo
from datetime import UTC, tzinfo
from functools import lru_cache
from typing import Any

from ..core import errors
from ..core.errors import NotFound
from ..core.profiles import ProfileRequest
from ..store import db
from ..store import profiles as store


@lru_cache(maxsize=1024)
def _zone(name: str) -> tzinfo | None:
    try:
        return zoneinfo.ZoneInfo(name)
    except (zoneinfo.ZoneInfoNotFoundError, ValueError, OSError):
        return None


def zone(name: str | None) -> tzinfo:
    """The time zone ``name``, UTC when there is none or it is not known."""
    found = _zone(name) if name else None
    return found if found is not None else UTC


@lru_cache(maxsize=1)
def known_timezones() -> frozenset[str]:
    """The IANA names this machine's time-zone database lists."""
    return frozenset(zoneinfo.available_timezones())


def check_timezone(name: str) -> str:
    if name not in known_timezones() or _zone(name) is None:
        raise errors.INVALID_TIMEZONE.error(f"timezone {name!r} is not an IANA time zone name"
                              " (e.g. Europe/Paris)")
    return name


class Profiles:
    def __init__(self, pool: db.Pool):
        self._pool = pool

    async def put(self, user_id: str, req: ProfileRequest) -> tuple[dict[str, Any], bool]:
        if req.timezone is not None:
            check_timezone(req.timezone)
        row, created = await store.put(self._pool, user_id, req.email, req.name, req.locale,
                                       req.timezone)
        return store.as_dict(row), created

    async def get(self, user_id: str) -> dict[str, Any]:
        row = await store.get(self._pool, user_id)
        if row is None:
            raise NotFound("Profile not found")
        return store.as_dict(row)

    async def delete(self, user_id: str) -> None:
        if not await store.delete(self._pool, user_id):
            raise NotFound("Profile not found")
