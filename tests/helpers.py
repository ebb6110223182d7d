"""Helpers for tests: tokens, headers, fresh user ids, a snapshot of the database."""

from __future__ import annotations

import uuid

import asyncpg

from tidings.auth import mint

JWT_SECRET = "test-secret-" + "x" * 40
API_KEY = "test-producer-key"
PRODUCER = {"Authorization": f"Bearer {API_KEY}"}


def token(user: str, ttl: int = 600, **kw: object) -> str:
    return mint(JWT_SECRET, user, ttl, **kw)  # type: ignore[arg-type]


def user_headers(user: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token(user)}"}


def new_user(prefix: str = "u") -> str:
    return f"{prefix}-{uuid.uuid4().hex[:10]}"


async def db_state(conn: asyncpg.Connection | asyncpg.Pool) -> dict[str, object]:
    """Everything a request could change, to show that a bad one changed nothing."""
    state: dict[str, object] = {}
    for table in ("tidings_notifications", "tidings_user_state", "tidings_devices",
                  "tidings_idempotency", "tidings_outbox", "tidings_scheduled"):
        rows = await conn.fetch(f"SELECT * FROM {table} ORDER BY 1")
        state[table] = [tuple(r.values()) for r in rows]
    return state
