"""Declared notification types: saved, listed and removed by producers, and known to the
publish path of each node.

Contracts:

- A type is saved only when valid: its schema, the rules between its fields and
  every template (:func:`tidings.core.typedefs.check_type`); a refused type is a
  400 and changes nothing.
- Each node keeps the declared types in memory for the publish path
  (:meth:`Types.plan_push`, :meth:`Types.uses_email`; no query per publish). A
  change made on this node is seen at once; one made on another node within :data:`REFRESH_SECONDS`
  (:meth:`Types.run` reloads them). Send-time decisions read the types from
  PostgreSQL (:func:`tidings.workers.push_policy`), so they are never stale.
- ``TIDINGS_TYPES`` (JSON, or ``@path``: an object of types by name) is loaded at
  start, each type created or replaced; a file that is not valid stops the start
  with a ``ConfigError`` naming the setting.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import msgspec

from ..core.decoding import decode_body
from ..core.errors import ConfigError, NotFound, StoreError, TidingsError, Unavailable
from ..core.requests import PublishRequest
from ..core.typedefs import TypeDefinition, check_name, check_type, merged_push, to_document
from ..store import db
from ..store import types as store

log = logging.getLogger(__name__)
REFRESH_SECONDS = 2.0

TypeMap = dict[str, TypeDefinition]


def parse_stored(raw: Mapping[str, Any]) -> TypeMap:
    """Stored definitions parsed; one that no longer parses is left out (and logged)."""
    out: TypeMap = {}
    for name, definition in raw.items():
        try:
            out[name] = msgspec.convert(definition, TypeDefinition)
        except msgspec.ValidationError as exc:
            log.error("notification type %r is stored but not valid (%s); it is ignored",
                      name, exc)
    return out


def parse_file(text: bytes) -> TypeMap:
    """The types of a types file (``{"name": {definition}, ...}``); raises TidingsError."""
    found = decode_body(text, dict[str, TypeDefinition])
    for name, t in found.items():
        try:
            check_name(name)
            check_type(t)
        except TidingsError as exc:
            raise TidingsError(f"type {name!r}: {exc.message}", kind=exc.kind) from None
    return found


class Types:
    def __init__(self, pool: db.Pool):
        self._pool = pool
        self._known: TypeMap = {}

    @property
    def known(self) -> Mapping[str, TypeDefinition]:
        """The declared types as this node last read them."""
        return self._known

    async def load(self) -> None:
        self._known = parse_stored(await store.all_types(self._pool))

    async def load_setting(self, value: str | None) -> int:
        """Create or replace the types of ``TIDINGS_TYPES``; returns how many."""
        if not value:
            return 0
        try:
            text = (await asyncio.to_thread(Path(value[1:]).read_bytes)
                    if value.startswith("@") else value.encode())
            found = parse_file(text)
        except OSError as exc:
            raise ConfigError("TIDINGS_TYPES", f"cannot read {value[1:]}: {exc.strerror}"
                              ) from None
        except TidingsError as exc:
            raise ConfigError("TIDINGS_TYPES", exc.message) from None
        return await self.save_many(found)

    async def save_many(self, found: Mapping[str, TypeDefinition]) -> int:
        n = await store.put_many(self._pool, {k: msgspec.to_builtins(t) for k, t in found.items()})
        await self.load()
        return n

    async def run(self) -> None:
        """Reload the types every :data:`REFRESH_SECONDS` (changes made on other nodes)."""
        while True:
            await asyncio.sleep(REFRESH_SECONDS)
            try:
                await self.load()
            except (Unavailable, StoreError) as exc:
                log.debug("notification types not reloaded: %s", exc)

    def plan_push(self, req: PublishRequest) -> dict[str, Any]:
        """The push options a publish owes: a declared type's defaults under its own."""
        t = self._known.get(req.type) if req.type is not None else None
        if t is None:
            return msgspec.to_builtins(req.push) if req.push is not None else {"when": "offline"}
        return merged_push(t, req.push)

    def uses_email(self, type_name: str | None) -> bool:
        """Whether notifications of ``type_name`` owe e-mail jobs (a declared type that uses
        the channel; each user's choice is read when the job is due)."""
        t = self._known.get(type_name) if type_name is not None else None
        return t is not None and "email" in t.channels

    async def put(self, name: str, t: TypeDefinition) -> tuple[dict[str, Any], bool]:
        """Create or replace ``name``: (the type's document, whether it is new)."""
        check_type(t)
        created = await store.put(self._pool, name, msgspec.to_builtins(t))
        self._known = {**self._known, name: t}
        return to_document(name, t), created

    async def get(self, name: str) -> dict[str, Any]:
        raw = await store.get(self._pool, name)
        found = parse_stored({name: raw}) if raw is not None else {}
        if name not in found:
            raise NotFound("Notification type not found")
        return to_document(name, found[name])

    async def list(self) -> list[dict[str, Any]]:
        self._known = parse_stored(await store.all_types(self._pool))
        return [to_document(n, t) for n, t in self._known.items()]

    async def delete(self, name: str) -> None:
        if not await store.delete(self._pool, name):
            raise NotFound("Notification type not found")
        self._known = {k: v for k, v in self._known.items() if k != name}
