"""APNs through aioapns: token (.p8) or certificate auth, sandbox or production.

aioapns 4.0 has the host and port as protocol class attributes, mints one
provider token per connection, retries only connection failures and hides
response headers. So this module gives each provider its own protocol subclass
(host and port from settings, Retry-After captured by ``apns-id``) and, with
token auth, one :class:`ProviderToken` shared by all its connections. A 403
ExpiredProviderToken mints a new token and sends once more. No other resend
happens here: 429/5xx come back as ``RETRY`` for the worker.
"""

from __future__ import annotations

import asyncio
import ssl
import time
from collections.abc import Callable
from functools import partial

import jwt
from aioapns.common import NotificationRequest, PushType
from aioapns.connection import (
    APNsBaseConnectionPool,
    APNsCertConnectionPool,
    APNsKeyConnectionPool,
    APNsTLSClientProtocol,
    AuthorizationHeaderProvider,
)
from aioapns.exceptions import ConnectionClosed, ConnectionError, MaxAttemptsExceeded

from ..core.push import (
    Device,
    Outcome,
    PushJob,
    SendResult,
    apns_options,
    apns_payload,
    apns_result,
    parse_retry_after,
)


class ProviderToken(AuthorizationHeaderProvider):
    """One ES256 provider token for all connections of an app.

    Minted again after ``ttl`` (APNs refuses tokens older than an hour and answers
    TooManyProviderTokenUpdates to refreshes more often than every 20 minutes), or
    at once after :meth:`expire` of the current header.
    """

    def __init__(self, key: str, key_id: str, team_id: str, *, ttl: float = 50 * 60,
                 clock: Callable[[], float] = time.time):
        self._key, self._key_id, self._team_id = key, key_id, team_id
        self._ttl, self._clock = ttl, clock
        self._header: str | None = None
        self._issued_at = 0.0

    def get_header(self) -> str:
        now = self._clock()
        if self._header is None or now - self._issued_at >= self._ttl:
            self._issued_at = now
            token = jwt.encode({"iss": self._team_id, "iat": int(now)}, self._key,
                               algorithm="ES256", headers={"kid": self._key_id})
            self._header = f"bearer {token}"
        return self._header

    def expire(self, header: str) -> None:
        """Forget ``header`` if it is still current (concurrent 403s refresh only once)."""
        if self._header == header:
            self._header = None


class _KeyPool(APNsKeyConnectionPool):
    """aioapns' token-auth pool, with one shared provider token instead of one per connection."""

    def __init__(self, auth: ProviderToken, **kwargs):
        super().__init__(**kwargs)
        self.auth = auth

    async def create_connection(self):
        factory = partial(self.protocol_class, self.apns_topic, self.loop,
                          self.discard_connection, self.auth)
        return await self._create_connection(factory)


def _protocol_class(base: type[APNsTLSClientProtocol], host: str | None, port: int | None,
                    retry_after: dict[str, str]) -> type[APNsTLSClientProtocol]:
    class Protocol(base):
        APNS_SERVER = host or base.APNS_SERVER
        APNS_PORT = port or base.APNS_PORT

        def on_response_received(self, headers: dict[bytes, bytes]) -> None:
            value = headers.get(b"retry-after")
            if value:
                retry_after[headers.get(b"apns-id", b"").decode()] = value.decode()
            super().on_response_received(headers)

    return Protocol


class APNsProvider:
    """Sends to one app (``topic``, the bundle id) with token or certificate auth.

    ``key`` is the .p8 key's PEM text. ``host``/``port``/``ssl_context`` point it
    elsewhere than Apple (a proxy, a test server). The aioapns pool is created on
    first use, inside the running event loop.
    """

    name = "apns"

    def __init__(self, *, topic: str, key: str | None = None, key_id: str | None = None,
                 team_id: str | None = None, cert_file: str | None = None,
                 sandbox: bool = False, host: str | None = None, port: int | None = None,
                 ssl_context: ssl.SSLContext | None = None, max_connections: int = 10,
                 connect_attempts: int = 3, timeout: float = 30.0,
                 clock: Callable[[], float] = time.time):
        if (key is None) == (cert_file is None):
            raise ValueError("APNs needs either key (with key_id and team_id) or cert_file")
        if key is not None and not (key_id and team_id):
            raise ValueError("APNs token auth needs key_id and team_id")
        self.topic = topic
        self._token = ProviderToken(key, key_id, team_id, clock=clock) if key else None
        self._cert_file = cert_file
        self._sandbox, self._host, self._port = sandbox, host, port
        self._ssl_context, self._max_connections = ssl_context, max_connections
        self._connect_attempts, self._timeout, self._clock = connect_attempts, timeout, clock
        self._retry_after: dict[str, str] = {}
        self._pool: APNsBaseConnectionPool | None = None

    def _get_pool(self) -> APNsBaseConnectionPool:
        if self._pool is None:
            common = dict(topic=self.topic, max_connections=self._max_connections,
                          max_connection_attempts=self._connect_attempts,
                          use_sandbox=self._sandbox, ssl_context=self._ssl_context)
            if self._token is not None:
                pool: APNsBaseConnectionPool = _KeyPool(
                    self._token, key="", key_id="", team_id="", **common)
            else:
                pool = APNsCertConnectionPool(cert_file=self._cert_file, **common)
            pool.protocol_class = _protocol_class(pool.protocol_class, self._host, self._port,
                                                  self._retry_after)
            self._pool = pool
        return self._pool

    async def send(self, device: Device, job: PushJob) -> SendResult:
        pool = self._get_pool()
        opts = apns_options(job)
        message = apns_payload(job)
        for resend in (True, False):
            header = self._token.get_header() if self._token else ""
            request = NotificationRequest(
                device_token=device.token, message=message, time_to_live=opts.ttl,
                priority=opts.priority, collapse_key=opts.collapse_id,
                push_type=PushType(opts.push_type))
            try:
                async with asyncio.timeout(self._timeout):
                    result = await pool.send_notification(request)
            except (ConnectionError, ConnectionClosed, MaxAttemptsExceeded, OSError,
                    TimeoutError) as exc:
                return SendResult(Outcome.RETRY, f"APNs connection: {exc!r}")
            retry_after = self._retry_after.pop(request.notification_id, None)
            if result.description == "ExpiredProviderToken" and self._token and resend:
                self._token.expire(header)
                continue
            return apns_result(int(result.status), result.description, result.timestamp,
                               parse_retry_after(retry_after, self._clock()))
        raise AssertionError("unreachable")

    async def close(self) -> None:
        if self._pool is not None:
            self._pool.close()
