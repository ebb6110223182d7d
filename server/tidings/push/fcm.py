"""FCM HTTP v1 through aiohttp, with a service-account OAuth2 token.

The access token comes from the service account's ``token_uri`` with an RS256
assertion signed by PyJWT, and is cached until ``refresh_margin`` seconds
before it expires; concurrent sends share one mint. A 401 drops the cached
token and sends once more. Everything else is mapped by ``core.push.fcm_result``
(Retry-After included); no backoff here, that is the worker's.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable
from typing import Any

import aiohttp
import jwt
import orjson
from multidict import CIMultiDict
from yarl import URL

from ..core.push import DELIVERED, Device, Outcome, PushJob, SendResult, fcm_message, fcm_result
from ..core.push import parse_retry_after as _retry_after

SCOPE = "https://www.googleapis.com/auth/firebase.messaging"
GRANT_TYPE = "urn:ietf:params:oauth:grant-type:jwt-bearer"
API_URL = "https://fcm.googleapis.com"
TOKEN_LIFETIME = 3600


class FCMProvider:
    """Sends to one Firebase project with one service account (the parsed JSON key file).

    ``token_url`` defaults to the account's ``token_uri``; ``api_url`` to Google's.
    HTTP/1.1 carries one request per connection at a time: ``max_connections``
    bounds the sends in flight (aiohttp's default of 100 would cap throughput).
    """

    name = "fcm"

    def __init__(self, service_account: dict[str, Any], *, project_id: str | None = None,
                 token_url: str | None = None, api_url: str = API_URL,
                 timeout: float = 30.0, refresh_margin: float = 300.0,
                 max_connections: int = 1000,
                 clock: Callable[[], float] = time.time):
        try:
            self._email = service_account["client_email"]
            self._key = service_account["private_key"]
            self.project_id = project_id or service_account["project_id"]
            self._token_url = token_url or service_account["token_uri"]
        except KeyError as exc:
            raise ValueError(f"FCM service account has no {exc.args[0]}") from None
        self._key_id = service_account.get("private_key_id")
        self._send_url = URL(f"{api_url.rstrip('/')}/v1/projects/{self.project_id}/messages:send")
        self._send_headers: tuple[str | None, CIMultiDict[str]] = (None, CIMultiDict())
        self._timeout = aiohttp.ClientTimeout(total=timeout)
        self._max_connections = max_connections
        self._margin, self._clock = refresh_margin, clock
        self._session: aiohttp.ClientSession | None = None
        self._token: str | None = None
        self._expires_at = 0.0
        self._lock = asyncio.Lock()

    def _http(self) -> aiohttp.ClientSession:
        if self._session is None:
            self._session = aiohttp.ClientSession(
                timeout=self._timeout,
                connector=aiohttp.TCPConnector(limit=self._max_connections, limit_per_host=0))
        return self._session

    async def access_token(self) -> str:
        """The cached access token, minted again near its expiry."""
        if self._token is not None and self._clock() < self._expires_at - self._margin:
            return self._token
        async with self._lock:
            if self._token is None or self._clock() >= self._expires_at - self._margin:
                self._token, self._expires_at = await self._mint()
            return self._token

    async def _mint(self) -> tuple[str, float]:
        now = int(self._clock())
        claims = {"iss": self._email, "scope": SCOPE, "aud": self._token_url,
                  "iat": now, "exp": now + TOKEN_LIFETIME}
        headers = {"kid": self._key_id} if self._key_id else None
        assertion = jwt.encode(claims, self._key, algorithm="RS256", headers=headers)
        async with self._http().post(
                self._token_url, data={"grant_type": GRANT_TYPE, "assertion": assertion}) as resp:
            body = await resp.json(content_type=None, loads=orjson.loads)
            if resp.status != 200 or "access_token" not in body:
                raise OAuthError(f"token endpoint answered {resp.status}: {body}")
        return body["access_token"], now + float(body.get("expires_in", TOKEN_LIFETIME))

    def _headers(self, token: str) -> CIMultiDict[str]:
        """The send headers for ``token``, built once per token (not once per send)."""
        if self._send_headers[0] != token:
            self._send_headers = (token, CIMultiDict(
                {"Authorization": f"Bearer {token}", "Content-Type": "application/json"}))
        return self._send_headers[1]

    async def send(self, device: Device, job: PushJob) -> SendResult:
        body = orjson.dumps(fcm_message(job, device.token, self._clock()))
        for resend in (True, False):
            try:
                token = await self.access_token()
                async with self._http().post(self._send_url, data=body,
                                             headers=self._headers(token)) as resp:
                    status = resp.status
                    answer = await resp.read()
                    if status == 200:  # the common case: nothing to parse
                        return DELIVERED
                    retry_after = _retry_after(resp.headers.get("Retry-After"), self._clock())
            except (aiohttp.ClientError, TimeoutError, OAuthError) as exc:
                return SendResult(Outcome.RETRY, f"FCM connection: {exc!r}")
            if status == 401 and resend:
                async with self._lock:
                    if self._token == token:
                        self._token = None
                continue
            try:
                parsed = orjson.loads(answer) if answer else None
            except orjson.JSONDecodeError:
                parsed = None
            return fcm_result(status, parsed, retry_after)
        raise AssertionError("unreachable")

    async def close(self) -> None:
        if self._session is not None:
            await self._session.close()


class OAuthError(Exception):
    """The token endpoint refused the service account's assertion."""
