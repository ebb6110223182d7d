"""The calling user's channel preferences: the effective document, and changes to it.

Contracts:

- Every read and change is scoped to the calling user.
- The document is the declared types' defaults with the user's choices laid over
  them (:func:`tidings.core.preferences.effective`), plus ``version``, which grows
  with every change of the user's choices (clients drop a frame older than
  what they show).
- A PATCH is applied under the user's row lock, so concurrent PATCHes of one user
  apply one after the other; a refused one (an undeclared type, a channel the
  type does not use, a required type's channel turned off) is a 400 and changes
  nothing.
- A one-click unsubscribe (:meth:`Preferences.email_off`) is such a PATCH, made
  only if the user's stored choice is not already e-mail off for the type.
- After a change, ``{"type": "preferences", ...the document}`` goes to every socket
  of the user on every node (through the bus, like counts). A Redis failure there
  loses only that live update, never the change (a socket reads the document
  again when it needs it).
"""

from __future__ import annotations

import logging
from typing import Any

import msgspec

from ..bus.publisher import Publisher
from ..core import events
from ..core.errors import BusUnavailable
from ..core.preferences import (
    PreferencesPatch,
    TypeChoice,
    apply_patch,
    effective,
    parse_choices,
)
from ..store import db
from ..store import preferences as store
from .health import Health
from .types import Types

log = logging.getLogger(__name__)


class Preferences:
    def __init__(self, pool: db.Pool, types: Types, publisher: Publisher,
                 health: Health | None = None):
        self._pool = pool
        self._types = types
        self._publisher = publisher
        self._health = health

    def _document(self, choices: Any, version: int) -> dict[str, Any]:
        return {**effective(self._types.known, parse_choices(choices)), "version": version}

    async def document(self, user_id: str) -> dict[str, Any]:
        choices, version = await store.get(self._pool, user_id)
        return self._document(choices, version)

    async def patch(self, user_id: str, patch: PreferencesPatch) -> dict[str, Any]:
        if isinstance(patch.types, dict) and set(patch.types) - set(self._types.known):
            await self._types.load()  # declared on another node since the last reload
        known = self._types.known

        async def apply(current: Any) -> dict[str, Any]:
            return msgspec.to_builtins(apply_patch(known, parse_choices(current), patch))

        choices, version = await store.change(self._pool, user_id, apply)
        doc = self._document(choices, version)
        await self._announce(user_id, doc)
        return doc

    async def email_off(self, user_id: str, kind: str) -> dict[str, Any]:
        """Turn e-mail off for type ``kind`` (a one-click unsubscribe): the PATCH of that one
        choice, refused and announced as any PATCH is; once the choice is stored, doing it
        again changes nothing (no new version, nothing announced)."""
        choices, version = await store.get(self._pool, user_id)
        chosen = parse_choices(choices).types.get(kind)
        t = self._types.known.get(kind)
        allowed = t is not None and "email" in t.channels and not (
            t.required and t.channels["email"])  # else the PATCH says why not
        if allowed and chosen is not None and chosen.channels.get("email") is False:
            return self._document(choices, version)
        return await self.patch(user_id, PreferencesPatch(
            types={kind: TypeChoice(channels={"email": False})}))

    async def _announce(self, user_id: str, doc: dict[str, Any]) -> None:
        try:
            await self._publisher.publish([events.preferences_event(user_id, doc)])
        except BusUnavailable as exc:  # one line per outage, not one per change
            if self._health is not None:
                self._health.report(exc)
            else:
                log.warning("preferences update not sent to a user's sockets: %s", exc)
