"""A Python client for Tidings: a socket subscriber, and the user's preferences.


:class:`Subscriber` connects, authenticates (header, subprotocol or first
message), and yields server messages as dicts. After a disconnect it
reconnects with exponential backoff and full jitter, resuming from the last
seq it saw, and drops a notification whose uid it already yielded, so a
consumer sees each stored notification once, in order. It gives up on 4003
(origin) and 4008 (too many sockets); on 4001 it asks ``get_token`` for a new
token once, then gives up. Given several node URLs, it moves to the next one
after each failed or lost connection. A change of the user's preferences (on
any device) arrives as a ``{"type": "preferences", ...}`` message.

:func:`preferences` and :func:`update_preferences` read and change the user's
channel preferences over HTTP (``/api/v1/me/preferences``); both return the
effective document and raise :class:`HTTPError` for an error answer.
"""

from __future__ import annotations

import asyncio
import random
from collections import OrderedDict
from collections.abc import AsyncIterator, Awaitable, Callable
from typing import Any, Literal
from urllib.parse import urlsplit, urlunsplit

import aiohttp
import orjson
from websockets.asyncio.client import ClientConnection, connect
from websockets.exceptions import ConnectionClosed, InvalidHandshake

PATH = "/ws/me/notifications"
FATAL = {4003: "origin not allowed", 4008: "too many sockets"}


class Closed(Exception):
    """The server ended the subscription for good (code and reason as it said)."""

    def __init__(self, code: int | None, reason: str):
        super().__init__(f"{code}: {reason}")
        self.code = code
        self.reason = reason


def socket_url(url: str) -> str:
    """``http(s)://host[:port]`` (or a ws URL) to the socket endpoint's ws(s) URL."""
    parts = urlsplit(url)
    scheme = {"http": "ws", "https": "wss"}.get(parts.scheme, parts.scheme)
    path = parts.path if parts.path.endswith(PATH) else parts.path.rstrip("/") + PATH
    return urlunsplit((scheme, parts.netloc, path, "", ""))


class HTTPError(Exception):
    """An error answer of the HTTP API: its status, code and message."""

    def __init__(self, status: int, code: str, message: str):
        super().__init__(f"{status} {code}: {message}")
        self.status, self.code, self.message = status, code, message


def http_url(url: str) -> str:
    """A node URL (http(s) or ws(s), any path) to its ``http(s)://host[:port]`` root."""
    parts = urlsplit(url)
    scheme = {"ws": "http", "wss": "https"}.get(parts.scheme, parts.scheme)
    return urlunsplit((scheme, parts.netloc, "", "", ""))


async def _call(method: str, url: str, token: str, body: Any = None) -> dict[str, Any]:
    headers = {"Authorization": f"Bearer {token}"}
    async with aiohttp.ClientSession() as http, http.request(
            method, http_url(url) + "/api/v1/me/preferences", headers=headers,
            json=body) as r:
        answer = await r.json(loads=orjson.loads, content_type=None)
        if r.status >= 400:
            error = answer.get("error", {}) if isinstance(answer, dict) else {}
            raise HTTPError(r.status, error.get("code", ""), error.get("message", ""))
        return answer


async def preferences(url: str, token: str) -> dict[str, Any]:
    """The user's effective preferences: channels, types, quiet hours, version."""
    return await _call("GET", url, token)


async def update_preferences(url: str, token: str, changes: dict[str, Any]) -> dict[str, Any]:
    """Change any part of the user's preferences (e.g. ``{"quiet_hours": None}``); returns
    the whole effective document."""
    return await _call("PATCH", url, token, changes)


class Subscriber:
    def __init__(
        self, url: str | list[str], token: str | None = None, *,
        get_token: Callable[[], Awaitable[str]] | None = None, since: int | None = None,
        auth: Literal["header", "subprotocol", "message"] = "header",
        backoff: float = 0.2, backoff_max: float = 10.0, origin: str | None = None,
        **connect_kwargs: Any,
    ):
        if token is None and get_token is None:
            raise ValueError("give a token or get_token")
        self.urls = [socket_url(u) for u in ([url] if isinstance(url, str) else url)]
        self.url = self.urls[0]
        self.token = token
        self.get_token = get_token
        self.last_seq = since
        self.auth = auth
        self.backoff = backoff
        self.backoff_max = backoff_max
        self.origin = origin
        self.connect_kwargs = connect_kwargs
        self.connects = 0
        self._seen: OrderedDict[str, None] = OrderedDict()
        self._ws: ClientConnection | None = None
        self._closed = False
        self.opened = asyncio.Event()

    async def _token(self, fresh: bool = False) -> str:
        if (fresh or self.token is None) and self.get_token is not None:
            self.token = await self.get_token()
        assert self.token is not None
        return self.token

    async def _open(self, token: str) -> ClientConnection:
        url = self.url
        headers: dict[str, str] = {}
        subprotocols = None
        if self.last_seq is not None and self.auth != "message":
            url += f"?since={self.last_seq}"
        if self.auth == "header":
            headers["Authorization"] = f"Bearer {token}"
        elif self.auth == "subprotocol":
            subprotocols = [token]
        ws = await connect(url, additional_headers=headers, subprotocols=subprotocols,
                           origin=self.origin, max_size=2**22, **self.connect_kwargs)
        if self.auth == "message":
            first: dict[str, Any] = {"type": "auth", "token": token}
            if self.last_seq is not None:
                first["since"] = self.last_seq
            await ws.send(orjson.dumps(first).decode())
        return ws

    def _fresh(self, message: dict[str, Any]) -> bool:
        """Track seqs and uids; False for a notification already yielded."""
        kind = message.get("type")
        if kind == "reset":
            self.last_seq = message.get("seq", self.last_seq)
            return True
        if kind != "notification":
            return True
        n = message["notification"]
        if n["uid"] in self._seen:
            return False
        self._seen[n["uid"]] = None
        if len(self._seen) > 10_000:
            self._seen.popitem(last=False)
        if n.get("seq") is not None:
            self.last_seq = max(self.last_seq or 0, n["seq"])
        return True

    async def __aiter__(self) -> AsyncIterator[dict[str, Any]]:
        attempt = 0
        refreshed = False
        token = await self._token()
        while not self._closed:
            try:
                self._ws = await self._open(token)
                self.connects += 1
                self.opened.set()
                attempt = 0
                async for raw in self._ws:
                    message = orjson.loads(raw)
                    refreshed = refreshed and message.get("type") != "counts"
                    if self._fresh(message):
                        yield message
            except ConnectionClosed as exc:
                code = exc.rcvd.code if exc.rcvd else None
                reason = exc.rcvd.reason if exc.rcvd else ""
                if self._closed:
                    return
                if code in FATAL:
                    raise Closed(code, reason) from None
                if code == 4001:
                    if refreshed or self.get_token is None:
                        raise Closed(code, reason) from None
                    token = await self._token(fresh=True)
                    refreshed = True
                    continue
            except (OSError, InvalidHandshake, TimeoutError):
                if self._closed:
                    return
            finally:
                self.opened.clear()
            self.url = self.urls[(self.urls.index(self.url) + 1) % len(self.urls)]
            attempt += 1
            cap = min(self.backoff_max, self.backoff * 2 ** min(attempt, 16))
            await asyncio.sleep(random.uniform(0, cap))

    async def send(self, message: dict[str, Any]) -> None:
        if self._ws is None:
            raise RuntimeError("not connected")
        await self._ws.send(orjson.dumps(message).decode())

    async def mark_read(self, uids: list[str]) -> None:
        await self.send({"type": "mark_read", "uids": uids})

    async def refresh(self, token: str) -> None:
        self.token = token
        await self.send({"type": "refresh", "token": token})

    async def close(self) -> None:
        self._closed = True
        if self._ws is not None:
            await self._ws.close()
