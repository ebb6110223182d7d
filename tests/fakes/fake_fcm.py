"""A local FCM for tests: the OAuth2 token endpoint and the HTTP v1 send endpoint (aiohttp).

The token endpoint checks the RS256 assertion as Google does (signature by the
service account's key, ``kid``, ``iss``, ``aud``, ``scope``, grant type) and
issues access tokens; the send endpoint checks the bearer token (401 when
unknown or revoked) and the message (token present, data values strings),
answers from a per-registration-token script (default 200), and records all.
:func:`make_service_account` makes a service-account JSON with a fresh RSA key.
"""

from __future__ import annotations

import asyncio
import itertools
from dataclasses import dataclass, field
from typing import Any

import jwt
from aiohttp import web
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import rsa

SCOPE = "https://www.googleapis.com/auth/firebase.messaging"
GRANT_TYPE = "urn:ietf:params:oauth:grant-type:jwt-bearer"


def make_service_account(project_id: str) -> tuple[dict[str, Any], Any]:
    """(service-account JSON without ``token_uri``, public key)."""
    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    pem = key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                            serialization.NoEncryption()).decode()
    account = {"type": "service_account", "project_id": project_id, "private_key_id": "kid-1",
               "private_key": pem, "client_email": f"push@{project_id}.iam.example.com",
               "client_id": "1"}
    return account, key.public_key()


@dataclass
class Answer:
    status: int = 200
    code: str | None = None  # FcmError errorCode
    message: str = ""
    retry_after: str | None = None
    delay: float = 0.0  # seconds before answering


@dataclass
class Sent:
    token: str  # registration token
    access_token: str
    body: dict[str, Any]
    status: int


@dataclass
class FakeFCM:
    account: dict[str, Any]
    public_key: Any
    expires_in: int = 3600
    script: dict[str, list[Answer]] = field(default_factory=dict)
    sent: list[Sent] = field(default_factory=list)
    token_requests: list[dict[str, Any]] = field(default_factory=list)  # assertion claims
    valid: set[str] = field(default_factory=set)
    default: Answer = field(default_factory=Answer)  # the answer when no script says otherwise
    in_flight: int = 0
    peak_in_flight: int = 0
    url: str = ""

    @property
    def token_url(self) -> str:
        return f"{self.url}/token"

    async def start(self) -> None:
        app = web.Application()
        app.router.add_post("/token", self._token)
        app.router.add_post("/v1/projects/{project}/messages:send", self._send)
        self._runner = web.AppRunner(app)
        await self._runner.setup()
        site = web.TCPSite(self._runner, "127.0.0.1", 0)
        await site.start()
        port = self._runner.addresses[0][1]
        self.url = f"http://127.0.0.1:{port}"
        self._ids = itertools.count(1)

    async def stop(self) -> None:
        await self._runner.cleanup()

    def reset(self) -> None:
        self.script.clear()
        self.sent.clear()
        self.token_requests.clear()
        self.valid.clear()
        self.expires_in = 3600
        self.default = Answer()
        self.in_flight = self.peak_in_flight = 0

    def answer(self, token: str, *answers: Answer) -> None:
        self.script.setdefault(token, []).extend(answers)

    def revoke_tokens(self) -> None:
        self.valid.clear()

    def to(self, token: str) -> list[Sent]:
        return [s for s in self.sent if s.token == token]

    async def _token(self, request: web.Request) -> web.Response:
        form = await request.post()
        if form.get("grant_type") != GRANT_TYPE:
            return web.json_response({"error": "unsupported_grant_type"}, status=400)
        try:
            assertion = str(form["assertion"])
            if jwt.get_unverified_header(assertion).get("kid") != self.account["private_key_id"]:
                raise jwt.InvalidTokenError("kid")
            claims = jwt.decode(assertion, self.public_key, algorithms=["RS256"],
                                audience=self.token_url, issuer=self.account["client_email"],
                                options={"require": ["iat", "exp", "scope"]})
        except (KeyError, jwt.InvalidTokenError) as exc:
            return web.json_response({"error": "invalid_grant", "error_description": str(exc)},
                                     status=400)
        if SCOPE not in claims["scope"].split():
            return web.json_response({"error": "invalid_scope"}, status=400)
        self.token_requests.append(claims)
        token = f"ya29.fake-{len(self.token_requests)}"
        self.valid.add(token)
        return web.json_response({"access_token": token, "expires_in": self.expires_in,
                                  "token_type": "Bearer"})

    @staticmethod
    def _error(status: int, code: str, message: str,
               retry_after: str | None = None) -> web.Response:
        body = {"error": {"code": status, "message": message, "status": code, "details": [
            {"@type": "type.googleapis.com/google.firebase.fcm.v1.FcmError", "errorCode": code}]}}
        headers = {"Retry-After": retry_after} if retry_after else None
        return web.json_response(body, status=status, headers=headers)

    async def _send(self, request: web.Request) -> web.Response:
        auth = request.headers.get("Authorization", "")
        access = auth.removeprefix("Bearer ")
        body = await request.json()
        message = body.get("message", {})
        token = message.get("token", "")
        if request.match_info["project"] != self.account["project_id"]:
            return self._error(403, "PERMISSION_DENIED", "wrong project")
        if not auth.startswith("Bearer ") or access not in self.valid:
            self.sent.append(Sent(token, access, body, 401))
            return self._error(401, "UNAUTHENTICATED", "Request had invalid authentication")
        if not token:
            answer = Answer(400, "INVALID_ARGUMENT", "message.token is required")
        elif not all(isinstance(v, str) for v in (message.get("data") or {}).values()):
            answer = Answer(400, "INVALID_ARGUMENT", "Invalid value at 'message.data'")
        else:
            script = self.script.get(token)
            answer = script.pop(0) if script else self.default
        self.sent.append(Sent(token, access, body, answer.status))
        if answer.delay:
            self.in_flight += 1
            self.peak_in_flight = max(self.peak_in_flight, self.in_flight)
            try:
                await asyncio.sleep(answer.delay)
            finally:
                self.in_flight -= 1
        if answer.status == 200:
            project = self.account["project_id"]
            return web.json_response({"name": f"projects/{project}/messages/{next(self._ids)}"})
        return self._error(answer.status, answer.code or "INTERNAL", answer.message,
                           answer.retry_after)
