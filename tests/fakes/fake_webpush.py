"""A local Web Push service for tests (aiohttp over HTTPS): it decrypts and checks every message.

:class:`Browser` is a subscription made as a browser makes one: its own P-256
key pair and 16-byte auth secret, an endpoint on the fake. The fake answers
``POST /push/{id}`` as a push service does (RFC 8030): it checks the VAPID
``Authorization`` (``vapid t=<JWT>, k=<key>``: the key is the application
server key the subscription was made with, the ES256 signature verifies with
it, ``aud`` is the endpoint's origin, ``exp`` at most 24 hours ahead, ``sub`` a
mailto: or https: URL; else 401/403), the ``TTL`` header and the
``aes128gcm`` coding, then DECRYPTS the body with the subscription's private
key (with http_ece, an implementation independent of the server's; 400 when it
does not decrypt). It answers from a per-subscription script (default 201):
201, 404, 410, 429 with Retry-After, 5xx. Everything received is recorded.
"""

from __future__ import annotations

import base64
import itertools
import json
import os
import ssl
import time
from dataclasses import dataclass, field
from typing import Any

import http_ece
import jwt
from aiohttp import web
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec

MAX_BODY = 4096
MAX_EXP = 24 * 3600


def b64url(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def unb64url(text: str) -> bytes:
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


@dataclass
class Browser:
    """One push subscription: what ``PushSubscription.toJSON()`` gives, and its private key."""

    endpoint: str
    key: ec.EllipticCurvePrivateKey = field(
        default_factory=lambda: ec.generate_private_key(ec.SECP256R1()))
    auth: bytes = field(default_factory=lambda: os.urandom(16))

    @property
    def p256dh(self) -> str:
        return b64url(self.key.public_key().public_bytes(
            serialization.Encoding.X962, serialization.PublicFormat.UncompressedPoint))

    def subscription(self) -> dict[str, Any]:
        return {"endpoint": self.endpoint, "expirationTime": None,
                "keys": {"p256dh": self.p256dh, "auth": b64url(self.auth)}}

    def decrypt(self, body: bytes) -> bytes:
        return http_ece.decrypt(body, private_key=self.key, auth_secret=self.auth,
                                version="aes128gcm")


@dataclass
class Answer:
    status: int = 201
    retry_after: str | None = None
    text: str = ""


@dataclass
class Received:
    sub_id: str
    headers: dict[str, str]
    body: bytes
    status: int = 0  # what the fake answered
    problem: str = ""  # why it refused, when it did
    plaintext: bytes | None = None
    claims: dict[str, Any] | None = None

    @property
    def payload(self) -> dict[str, Any]:
        assert self.plaintext is not None, self.problem
        return json.loads(self.plaintext)


@dataclass
class FakeWebPush:
    """``application_server_key``: the VAPID public key (base64url) subscriptions are made with."""

    cert: str
    key: str
    application_server_key: str = ""
    host: str = "localhost"
    port: int = 0
    browsers: dict[str, Browser] = field(default_factory=dict)
    script: dict[str, list[Answer]] = field(default_factory=dict)
    received: list[Received] = field(default_factory=list)
    _ids: Any = field(default_factory=itertools.count)

    @property
    def base(self) -> str:
        return f"https://{self.host}:{self.port}"

    def subscribe(self, host: str | None = None) -> tuple[str, Browser]:
        """A new subscription on the fake (its endpoint names ``host``, default localhost)."""
        sub_id = f"s{next(self._ids)}-{b64url(os.urandom(6))}"
        browser = Browser(f"https://{host or self.host}:{self.port}/push/{sub_id}")
        self.browsers[sub_id] = browser
        return sub_id, browser

    def answer(self, sub_id: str, *answers: Answer) -> None:
        self.script.setdefault(sub_id, []).extend(answers)

    def reset(self) -> None:
        self.browsers.clear()
        self.script.clear()
        self.received.clear()

    def for_sub(self, sub_id: str) -> list[Received]:
        return [r for r in self.received if r.sub_id == sub_id]

    async def start(self) -> None:
        app = web.Application(client_max_size=MAX_BODY * 2)
        app.router.add_post("/push/{sub_id}", self._push)
        self._runner = web.AppRunner(app)
        await self._runner.setup()
        context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
        context.load_cert_chain(self.cert, self.key)
        site = web.TCPSite(self._runner, "127.0.0.1", 0, ssl_context=context)
        await site.start()
        self.port = site._server.sockets[0].getsockname()[1]  # type: ignore[union-attr]

    async def stop(self) -> None:
        await self._runner.cleanup()

    def _vapid(self, request: web.Request, got: Received) -> tuple[int, str]:
        """(0, '') when the VAPID authorization is right, else the refusal."""
        scheme, _, params = request.headers.get("Authorization", "").partition(" ")
        fields = dict(p.strip().split("=", 1) for p in params.split(",") if "=" in p)
        if scheme != "vapid" or "t" not in fields or "k" not in fields:
            return 401, "no vapid t=..., k=... Authorization"
        if fields["k"] != self.application_server_key:
            return 403, "k is not the key the subscription was made with"
        public = ec.EllipticCurvePublicKey.from_encoded_point(ec.SECP256R1(), unb64url(fields["k"]))
        try:
            got.claims = jwt.decode(fields["t"], public, algorithms=["ES256"],
                                    audience=f"https://{request.host}",
                                    options={"require": ["aud", "exp", "sub"]})
        except jwt.InvalidTokenError as exc:
            return 403, f"JWT: {exc}"
        if got.claims["exp"] > time.time() + MAX_EXP:
            return 403, "exp more than 24 hours ahead"
        if not str(got.claims["sub"]).startswith(("mailto:", "https:")):
            return 403, "sub is not a mailto: or https: URL"
        return 0, ""

    async def _push(self, request: web.Request) -> web.Response:
        sub_id = request.match_info["sub_id"]
        got = Received(sub_id, dict(request.headers), await request.read())
        self.received.append(got)
        status, problem = self._vapid(request, got)
        if not status:
            status, problem = self._message(request, got, sub_id)
        if status:
            got.status, got.problem = status, problem
            return web.Response(status=status, text=problem)
        script = self.script.get(sub_id)
        answer = script.pop(0) if script else Answer()
        got.status = answer.status
        headers = {"Retry-After": answer.retry_after} if answer.retry_after else {}
        if answer.status == 201:
            headers["Location"] = f"{self.base}/message/{len(self.received)}"
        return web.Response(status=answer.status, headers=headers, text=answer.text)

    def _message(self, request: web.Request, got: Received, sub_id: str) -> tuple[int, str]:
        if not request.headers.get("TTL", "").isdigit():
            return 400, "TTL header missing or not a number"
        if request.headers.get("Content-Encoding") != "aes128gcm":
            return 415, "Content-Encoding is not aes128gcm"
        if len(got.body) > MAX_BODY:
            return 413, f"body of {len(got.body)} bytes"
        browser = self.browsers.get(sub_id)
        if browser is None:
            return 404, "no such subscription"
        try:
            got.plaintext = browser.decrypt(got.body)
        except Exception as exc:  # http_ece raises several kinds
            return 400, f"does not decrypt: {exc!r}"
        return 0, ""
