"""Shapes of what clients see: notifications, counts, and inbox pages.

These are the contract the README documents (compatible with
django-notifications-websocket). Inputs are plain mappings (a database row or
a bus event), outputs are plain dicts ready for one JSON encoding.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

ACTIVE = "ACTIVE"
REMOVED = "REMOVED"


@dataclass(frozen=True, slots=True)
class Counts:
    """A user's inbox counts; ``version`` grows with every change, ordering updates."""

    total: int
    unread: int
    version: int = 0

    @property
    def read(self) -> int:
        return self.total - self.unread

    def as_dict(self) -> dict[str, int]:
        return {
            "total_notifications": self.total,
            "read_notifications": self.total - self.unread,
            "unread_notifications": self.unread,
        }


#: Fields of a notification that every recipient of one publish shares.
CONTENT_FIELDS = (
    "message",
    "type",
    "title",
    "data",
    "created_by",
    "model",
    "instance",
    "method",
    "changed_data",
    "custom_info",
)


def notification_dict(row: Mapping[str, Any]) -> dict[str, Any]:
    """One notification as the API shows it, from a row or an event's fields.

    ``row`` has ``id, uid, seq, user_id, status, read_at, created_at,
    updated_at`` and the :data:`CONTENT_FIELDS`. ``id`` and ``seq`` are None
    for a live-only (``persist: false``) notification.
    """
    return {
        "id": row["id"],
        "uid": str(row["uid"]),
        "seq": row["seq"],
        "user": {"id": row["user_id"]},
        "notification": {
            "message": row["message"],
            "model": row["model"],
            "instance": row["instance"],
            "method": row["method"],
            "changed_data": row["changed_data"],
        },
        "type": row["type"],
        "title": row["title"],
        "data": row["data"],
        "is_read": row["read_at"] is not None,
        "custom_info": row["custom_info"],
        "created_by": row["created_by"],
        "status": row["status"],
        "created_at": row["created_at"],
        "updated_at": row["updated_at"],
    }


def inbox_page(counts: Counts, rows: list[Mapping[str, Any]], **extra: Any) -> dict[str, Any]:
    """The list envelope: the three counts, then the notifications, newest first."""
    page = counts.as_dict()
    page["notifications"] = [notification_dict(r) for r in rows]
    page.update(extra)
    return page
