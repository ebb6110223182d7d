"""A declared type's subscribers, as the operator's console reads them.

Contracts:

- The subscribers are the users Tidings knows (:func:`tidings.store.admin.known_users`:
  a notification stored for them, a profile, stored preferences or a device) who
  subscribe to the type (:func:`tidings.core.preferences.subscribes`: some channel of
  the type is on for them, or the type uses no channel). Users Tidings has never seen
  are not among them: Tidings has no list of a producer's users.
- They are read in user id order, :data:`PAGE_ROWS` known users per query, so a type
  with any number of subscribers is never held in memory at once; each page is read
  as the reader reaches it (a choice changed meanwhile counts from the next page).
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Mapping

from ..core.preferences import parse_choices, subscribes
from ..core.requests import MAX_RECIPIENTS
from ..core.typedefs import TypeDefinition
from ..store import admin as store
from ..store import db

#: Known users read per query: a page of subscribers is at most one publish's recipients.
PAGE_ROWS = MAX_RECIPIENTS


async def pages(pool: db.Pool, types: Mapping[str, TypeDefinition], name: str,
                after: str = "", rows: int = PAGE_ROWS) -> AsyncIterator[list[str]]:
    """The subscribers of the declared type ``name`` whose ids sort after ``after``, in
    id order, in non-empty pages of at most ``rows``."""
    while True:
        known = await store.known_users(pool, after, rows)
        found = [u for u, choices in known if subscribes(types, name, parse_choices(choices))]
        if found:
            yield found
        if len(known) < rows:
            return
        after = known[-1][0]


async def page(pool: db.Pool, types: Mapping[str, TypeDefinition], name: str, after: str,
               limit: int) -> dict[str, object]:
    """``limit`` subscribers after ``after``: ``next_after`` continues (None: the end)."""
    items: list[str] = []
    async for found in pages(pool, types, name, after):
        items += found[:limit - len(items)]
        if len(items) == limit:
            break
    return {"items": items, "next_after": items[-1] if len(items) == limit else None}
