"""Where one stored notification went, for its producer: sockets, pushes, their outcomes."""

from __future__ import annotations

import uuid
from typing import Any

from ..store import db, delivery_log, inbox


async def of(pool: db.Pool, uid: uuid.UUID) -> tuple[str, list[dict[str, Any]]] | None:
    """(recipient, delivery log entries) of the notification ``uid``; None if there is none."""
    user_id = await inbox.owner(pool, uid)
    if user_id is None:
        return None
    return user_id, await delivery_log.deliveries(pool, str(uid))
