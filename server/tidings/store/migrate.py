"""Schema migrations: numbered plain SQL files applied once each, in order.

Each file runs in its own transaction together with its row in
``tidings_migrations``; the whole run holds a PostgreSQL advisory lock, so
nodes starting together apply each file exactly once.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path

import asyncpg

LOCK_ID = 0x7469_6469  # "tidi": advisory lock key of the migration runner
_NAME = re.compile(r"^(\d{4})_[a-z0-9_]+\.sql$")


@dataclass(frozen=True)
class Migration:
    version: int
    name: str
    sql: str


def migrations_dir() -> Path:
    """The packaged migrations (installed wheel), else the source tree's ``migrations/``."""
    here = Path(__file__).resolve().parent.parent
    packaged = here / "migrations"
    if packaged.is_dir():
        return packaged
    return here.parent.parent / "migrations"


def load(folder: Path | None = None) -> list[Migration]:
    """The migration files of ``folder``, checked for unique numbers, in order."""
    folder = folder or migrations_dir()
    found: dict[int, Migration] = {}
    for path in sorted(folder.glob("*.sql")):
        match = _NAME.match(path.name)
        if not match:
            raise ValueError(f"migration file {path.name} is not named NNNN_name.sql")
        version = int(match.group(1))
        if version in found:
            raise ValueError(f"two migrations are numbered {version:04d}")
        found[version] = Migration(version, path.name, path.read_text())
    return [found[v] for v in sorted(found)]


async def apply(conn: asyncpg.Connection, migrations: list[Migration] | None = None) -> list[str]:
    """Apply pending migrations; returns the names applied (empty when up to date)."""
    migrations = load() if migrations is None else migrations
    applied: list[str] = []
    await conn.execute("SELECT pg_advisory_lock($1)", LOCK_ID)
    try:
        await conn.execute(
            "CREATE TABLE IF NOT EXISTS tidings_migrations ("
            " version integer PRIMARY KEY, name text NOT NULL,"
            " applied_at timestamptz NOT NULL DEFAULT now())"
        )
        done = {r["version"] for r in await conn.fetch("SELECT version FROM tidings_migrations")}
        for m in migrations:
            if m.version in done:
                continue
            async with conn.transaction():
                await conn.execute(m.sql)
                await conn.execute(
                    "INSERT INTO tidings_migrations (version, name) VALUES ($1, $2)",
                    m.version, m.name,
                )
            applied.append(m.name)
    finally:
        await conn.execute("SELECT pg_advisory_unlock($1)", LOCK_ID)
    return applied
