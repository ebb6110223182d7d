"""Web Push through aiohttp: encrypted payloads (RFC 8291), VAPID (RFC 8292), no SSRF.

Each send checks the device's endpoint against the host policy again (the
setting may have changed since it was registered; a refusal fails the send and
keeps the device), encrypts :func:`~tidings.core.webpush.webpush_payload` for
the subscription's keys, and posts it with ``TTL``, ``Urgency``, ``Topic`` and
the VAPID ``Authorization``. Names resolve through :class:`GuardedResolver`, so
the connection goes only to addresses the policy allows; redirects are not
followed. The answer is mapped by :func:`~tidings.core.webpush.webpush_result`
(404/410 deactivate, 429/5xx retry after Retry-After); a ``p256dh`` that is not
a P-256 point deactivates the device; connection trouble is a retry.
"""

from __future__ import annotations

import base64
import ssl
import time
from collections.abc import Callable

import aiohttp
import msgspec
from yarl import URL

from ..core.errors import ValidationError
from ..core.push import Device, Outcome, PushJob, SendResult, parse_retry_after
from ..core.webpush import (
    HostPolicy,
    check_endpoint,
    webpush_headers,
    webpush_payload,
    webpush_result,
)
from .address_guard import GuardedResolver, refused
from .ece import BadSubscriptionKey, encrypt
from .vapid import Vapid

ANSWER_BYTES = 1024  # of an error answer, kept for the delivery log's detail


def _raw(text: str) -> bytes:
    """The bytes of a base64url key (registration checked its alphabet and length)."""
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


class WebPushProvider:
    """Sends to any browser push service the policy allows, as one VAPID application server."""

    name = "webpush"

    def __init__(self, vapid: Vapid, policy: HostPolicy, *,
                 ssl_context: ssl.SSLContext | None = None, timeout: float = 30.0,
                 max_connections: int = 200, clock: Callable[[], float] = time.time):
        self._vapid, self._policy = vapid, policy
        self._ssl = ssl_context if ssl_context is not None else True
        self._timeout = aiohttp.ClientTimeout(total=timeout)
        self._max_connections = max_connections
        self._clock = clock
        self._session: aiohttp.ClientSession | None = None

    def _http(self) -> aiohttp.ClientSession:
        if self._session is None:
            self._session = aiohttp.ClientSession(
                timeout=self._timeout,
                connector=aiohttp.TCPConnector(limit=self._max_connections, limit_per_host=0,
                                               resolver=GuardedResolver(self._policy),
                                               ssl=self._ssl))
        return self._session

    async def send(self, device: Device, job: PushJob) -> SendResult:
        if not (device.endpoint and device.p256dh and device.auth):
            return SendResult(Outcome.FAILED, "not a Web Push subscription")
        try:
            endpoint = check_endpoint(device.endpoint, self._policy)
        except ValidationError as exc:
            return SendResult(Outcome.FAILED, f"refused: {exc.message}")
        plaintext = msgspec.json.encode(webpush_payload(job))
        try:
            body = encrypt(plaintext, _raw(device.p256dh), _raw(device.auth))
        except (BadSubscriptionKey, ValueError) as exc:
            return SendResult(Outcome.INVALID_TOKEN, f"subscription keys: {exc}")
        headers = {**webpush_headers(job), "Content-Encoding": "aes128gcm",
                   "Content-Type": "application/octet-stream",
                   "Authorization": self._vapid.authorization(endpoint.origin)}
        try:
            async with self._http().post(URL(device.endpoint, encoded=True), data=body,
                                         headers=headers, allow_redirects=False) as resp:
                status = resp.status
                answer = await resp.content.read(ANSWER_BYTES)
                retry_after = parse_retry_after(resp.headers.get("Retry-After"), self._clock())
        except (aiohttp.ClientError, TimeoutError, OSError) as exc:
            guard = refused(exc)
            if guard is not None:
                return SendResult(Outcome.FAILED, f"refused: {guard}")
            return SendResult(Outcome.RETRY, f"Web Push connection: {exc!r}")
        return webpush_result(status, answer.decode(errors="replace"), retry_after)

    async def close(self) -> None:
        if self._session is not None:
            await self._session.close()
