"""The calling user's push devices: register, list, read, change, forget.

Contract: every call is scoped to ``user_id``; another user's device is a
NotFound, never revealed. Registering a token another user held moves it to
the caller with only what the caller sent (see :mod:`tidings.store.devices`).
A Web Push subscription is registered only if its endpoint is one the server
may post to (:func:`tidings.core.webpush.check_endpoint` with the host policy)
and its keys are well formed: else ValidationError, and nothing is stored.
"""

from __future__ import annotations

from typing import Any

from ..core.errors import NotFound
from ..core.requests import WebPushSubscription
from ..core.webpush import HostPolicy, check_endpoint, check_keys
from ..store import db, devices


class Devices:
    def __init__(self, pool: db.Pool, webpush_policy: HostPolicy | None = None):
        self._pool = pool
        self._policy = webpush_policy or HostPolicy()

    async def register(self, user_id: str, platform: str, token: str, app_id: str | None,
                       name: str | None, active: bool = True,
                       subscription: WebPushSubscription | None = None) -> tuple[db.Row, bool]:
        """(the device as stored, whether it is new for this user); ``subscription`` is a
        Web Push device's (its token is derived from the endpoint)."""
        keys = None
        if subscription is not None:
            check_endpoint(subscription.endpoint, self._policy)
            check_keys(subscription.keys.p256dh, subscription.keys.auth)
            keys = (subscription.endpoint, subscription.keys.p256dh, subscription.keys.auth)
        return await devices.register(self._pool, user_id, platform, token, app_id, name,
                                      active, keys)

    async def list_for(self, user_id: str) -> list[db.Row]:
        return await devices.list_for(self._pool, user_id)

    async def get(self, user_id: str, token: str) -> db.Row:
        row = await devices.get(self._pool, user_id, token)
        if row is None:
            raise NotFound("Device not found")
        return row

    async def update(self, user_id: str, token: str, changes: dict[str, Any]) -> db.Row:
        """Apply ``changes`` (app_id, name, active); with none, the device as it is."""
        if not changes:
            return await self.get(user_id, token)
        row = await devices.update(self._pool, user_id, token, changes)
        if row is None:
            raise NotFound("Device not found")
        return row

    async def delete(self, user_id: str, token: str) -> None:
        if not await devices.delete(self._pool, user_id, token):
            raise NotFound("Device not found")
