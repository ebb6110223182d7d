"""One user's inbox: its pages, one notification, the actions, and the counts sockets get.

Contract: every read and change is scoped to the calling user. A change and
the new counts commit together (one statement); the
counts event then goes to every node holding the user's sockets. A Redis
failure there loses only that live update, never data: counts carry a version
and each later change or reconnect brings the current ones.
"""

from __future__ import annotations

import logging
import uuid
from collections.abc import Sequence

from ..bus.publisher import Publisher
from ..core import errors, events
from ..core.errors import BusUnavailable, NotFound
from ..core.replies import Counts
from ..core.requests import ListQuery
from ..store import db, inbox
from .health import Health

log = logging.getLogger(__name__)


class Inbox:
    def __init__(self, pool: db.Pool, publisher: Publisher, health: Health | None = None):
        self._pool = pool
        self._publisher = publisher
        self._health = health

    async def page(self, user_id: str, q: ListQuery) -> tuple[Counts, list[db.Row], int | None]:
        """A page of the user's notifications: (counts, rows newest first, next ``before``).

        Raises NotFound ``invalid_page`` for a numbered page past the last one.
        """
        counts = await inbox.counts(self._pool, user_id)
        is_read, before = q.read_filter, q.cursor
        matching = {None: counts.total, True: counts.read, False: counts.unread}[is_read]
        offset = 0 if before is not None else (q.page - 1) * q.page_size
        if before is None and q.page > 1 and offset >= matching:
            raise errors.INVALID_PAGE.error("Invalid page.")
        rows = await inbox.page(self._pool, user_id, limit=q.page_size, offset=offset,
                                is_read=is_read, before=before)
        more = len(rows) == q.page_size and (before is not None or offset + len(rows) < matching)
        return counts, rows, rows[-1]["seq"] if more else None

    async def one(self, user_id: str, uid: uuid.UUID) -> db.Row:
        """The user's ACTIVE notification ``uid``; NotFound if there is none."""
        row = await inbox.one(self._pool, user_id, uid)
        if row is None:
            raise NotFound("Notification not found")
        return row

    async def act(self, user_id: str, action: str,
                  uids: Sequence[uuid.UUID] = ()) -> tuple[int, Counts]:
        """Apply ``action`` to the user's own notifications; (changed, counts now)."""
        if action in inbox.BY_UID and not uids:
            raise errors.UIDS_REQUIRED.error(f"{action} needs notification_uids")
        changed, counts = await inbox.act(self._pool, user_id, action, uids)
        if counts is None:
            return 0, await inbox.counts(self._pool, user_id)
        await self.announce(user_id, counts)
        return changed, counts

    async def announce(self, user_id: str, counts: Counts) -> None:
        """Send new counts to the user's sockets on every node (best effort)."""
        try:
            await self._publisher.publish([events.counts_event(user_id, counts)])
        except BusUnavailable as exc:  # one line per outage, not one per update
            if self._health is not None:
                self._health.report(exc)
            else:
                log.warning("counts update not sent for a user: %s", exc)
