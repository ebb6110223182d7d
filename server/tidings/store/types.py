"""Declared notification types: the SQL of ``tidings_types`` (schema 5).

Definitions are stored as the API's JSON document; parsing them is for the
callers (:mod:`tidings.core.typedefs`). Every function raises only
:class:`~tidings.core.errors.StoreUnavailable` or
:class:`~tidings.core.errors.StoreError`.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import asyncpg

from .db import Pool
from .errors import store_edge


@store_edge
async def put(pool: Pool, name: str, definition: dict[str, Any]) -> bool:
    """Create or replace type ``name``; True when it is new."""
    return await pool.fetchval(
        "INSERT INTO tidings_types AS t (name, definition) VALUES ($1, $2)"
        " ON CONFLICT (name) DO UPDATE SET definition = EXCLUDED.definition, updated_at = now()"
        " RETURNING xmax = 0", name, definition)


@store_edge
async def put_many(pool: Pool, definitions: Mapping[str, dict[str, Any]]) -> int:
    """Create or replace several types in one transaction; returns how many."""
    if not definitions:
        return 0
    async with pool.acquire() as conn, conn.transaction():
        await conn.execute(
            "INSERT INTO tidings_types AS t (name, definition)"
            " SELECT * FROM unnest($1::text[], $2::jsonb[])"
            " ON CONFLICT (name) DO UPDATE SET definition = EXCLUDED.definition,"
            " updated_at = now()", list(definitions), list(definitions.values()))
    return len(definitions)


@store_edge
async def get(pool: Pool, name: str) -> dict[str, Any] | None:
    return await pool.fetchval("SELECT definition FROM tidings_types WHERE name = $1", name)


@store_edge
async def delete(pool: Pool, name: str) -> bool:
    status = await pool.execute("DELETE FROM tidings_types WHERE name = $1", name)
    return status.endswith(" 1")


@store_edge
async def all_types(pool: Pool | asyncpg.Connection) -> dict[str, dict[str, Any]]:
    """Every declared type by name."""
    rows = await pool.fetch("SELECT name, definition FROM tidings_types ORDER BY name")
    return {r["name"]: r["definition"] for r in rows}


@store_edge
async def some(pool: Pool, names: Sequence[str]) -> dict[str, dict[str, Any]]:
    """The declared types among ``names``."""
    if not names:
        return {}
    rows = await pool.fetch(
        "SELECT name, definition FROM tidings_types WHERE name = ANY($1::text[])", list(names))
    return {r["name"]: r["definition"] for r in rows}
