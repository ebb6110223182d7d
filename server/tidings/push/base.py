"""The provider contract: one push to one device, answered with a :class:`SendResult`.

A provider renders the platform payload from the job itself (``core.push``)
and must not raise for anything the remote service answers: it maps every
answer to an outcome (delivered, invalid token, retry after N s, failed).
Connection trouble becomes ``RETRY``; a bug may still raise, and the worker
treats that as a retry too. Providers are shared by concurrent sends; the
registry bounds how many run at once.
"""

from __future__ import annotations

from typing import Protocol

from ..core.push import Device, PushJob, SendResult


class PushProvider(Protocol):
    #: "apns", "fcm" or "console": the delivery log's channel.
    name: str

    async def send(self, device: Device, job: PushJob) -> SendResult:
        """Send ``job`` to ``device``; at most one provider-level resend (a refreshed
        credential), never a sleep: retries with backoff are the worker's."""
        ...

    async def close(self) -> None:
        """Release connections; the provider is not used afterwards."""
        ...
