"""User tokens signed with public keys: RS256/ES256 PEM keys and a JWKS URL (served locally)."""

from __future__ import annotations

import asyncio
import io
import json
import logging
import time
from dataclasses import replace

import jwt
import pytest
from aiohttp import web
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec, rsa

from tidings import config, logsafe
from tidings.auth import TokenVerifier
from tidings.cli import common, serve
from tidings.core.errors import AuthError

from helpers import API_KEY, JWT_SECRET, serve_node, token


def _pem_pair(kind: str):
    key = (rsa.generate_private_key(public_exponent=65537, key_size=2048) if kind == "RS256"
           else ec.generate_private_key(ec.SECP256R1()))
    private = key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                                serialization.NoEncryption())
    public = key.public_key().public_bytes(serialization.Encoding.PEM,
                                           serialization.PublicFormat.SubjectPublicKeyInfo)
    return key, private, public.decode()


def _claims(**extra):
    return {"sub": "alice", "exp": int(time.time()) + 60, **extra}


@pytest.mark.parametrize("alg", ["RS256", "ES256"])
async def test_public_key_tokens(alg, tmp_path):
    _, private, public = _pem_pair(alg)
    path = tmp_path / "key.pem"
    path.write_text(public)
    s = config.load({"TIDINGS_JWT_PUBLIC_KEY": f"@{path}", "TIDINGS_JWT_AUDIENCE": "app",
                     "TIDINGS_JWT_ISSUER": "https://id.example"})
    verifier = TokenVerifier(s)
    good = jwt.encode(_claims(aud="app", iss="https://id.example"), private, algorithm=alg)
    assert (await verifier.verify(good)).user_id == "alice"
    for bad in (jwt.encode(_claims(aud="other", iss="https://id.example"), private,
                           algorithm=alg),
                jwt.encode(_claims(aud="app", iss="https://evil.example"), private,
                           algorithm=alg),
                # HS256 signed with the public key text: the classic confusion attack
                jwt.encode(_claims(aud="app", iss="https://id.example"), "k" * 32,
                           algorithm="HS256")):
        with pytest.raises(AuthError):
            await verifier.verify(bad)


async def test_jwks_fetch_cache_and_refresh_on_unknown_kid():
    keys = {"k1": _pem_pair("RS256")[0]}
    fetches = []

    async def jwks(request):
        fetches.append(time.monotonic())
        return web.json_response({"keys": [
            {**json.loads(jwt.algorithms.RSAAlgorithm.to_jwk(k.public_key())), "kid": kid,
             "alg": "RS256", "use": "sig"} for kid, k in keys.items()]})

    app = web.Application()
    app.router.add_get("/jwks.json", jwks)
    runner = web.AppRunner(app)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    port = site._server.sockets[0].getsockname()[1]
    try:
        s = config.load({"TIDINGS_JWT_JWKS_URL": f"http://127.0.0.1:{port}/jwks.json"})
        verifier = TokenVerifier(s)

        def sign(kid):
            pem = keys[kid].private_bytes(serialization.Encoding.PEM,
                                          serialization.PrivateFormat.PKCS8,
                                          serialization.NoEncryption())
            return jwt.encode(_claims(), pem, algorithm="RS256", headers={"kid": kid})

        assert (await verifier.verify(sign("k1"))).user_id == "alice"
        assert (await verifier.verify(sign("k1"))).user_id == "alice"
        assert len(fetches) == 1, "cached"
        keys["k2"] = _pem_pair("RS256")[0]
        verifier._jwks_fetched -= 60  # as if the last fetch was a minute ago
        assert (await verifier.verify(sign("k2"))).user_id == "alice"
        assert len(fetches) == 2, "refetched for the unknown kid"
        with pytest.raises(AuthError):
            await verifier.verify(jwt.encode(_claims(), "z" * 32, algorithm="HS256",
                                             headers={"kid": "k1"}))
        keys["k9"] = _pem_pair("RS256")[0]
        unpublished = sign("k9")
        del keys["k9"]
        with pytest.raises(AuthError, match="unknown"):
            await verifier.verify(unpublished)
        assert len(fetches) == 2, "unknown kids do not hammer the JWKS endpoint"
    finally:
        await runner.cleanup()


# No credential in any log line; aiohttp's own refusals answer JSON (issue 12).

@pytest.fixture
def server_log():
    """Everything logged while the test runs: raw records, and the lines the CLI would write."""
    raw: list[logging.LogRecord] = []

    class Keep(logging.Handler):
        def emit(self, record: logging.LogRecord) -> None:
            raw.append(record)

    text = io.StringIO()
    root = logging.getLogger()
    handlers = [Keep(level=logging.DEBUG), logsafe.handler(text)]
    old_level = root.level
    root.setLevel(logging.DEBUG)
    for h in handlers:
        root.addHandler(h)
    logsafe.protect([API_KEY, JWT_SECRET])
    try:
        yield raw, text
    finally:
        for h in handlers:
            root.removeHandler(h)
        root.setLevel(old_level)


async def _raw(url: str, request: bytes) -> tuple[int, dict]:
    host, port = url[len("http://"):].split(":")
    reader, writer = await asyncio.open_connection(host, int(port))
    writer.write(request)
    answer = await reader.read()
    writer.close()
    head, _, body = answer.partition(b"\r\n\r\n")
    return int(head.split()[1]), json.loads(body)


async def test_malformed_requests_leak_no_credential_to_the_log(node, server_log):
    raw, text = server_log
    user_jwt = token("log-victim")
    requests = [
        b"GET /api/v1/me/notifications HTTP/1.1\r\nHost: x\r\n"
        b"Authorization: Bearer %s\x01\r\n\r\n" % user_jwt.encode(),
        b"POST /api/v1/notifications HTTP/1.1\r\nHost: x\r\n"
        b"Authorization: Bearer %s\x01\r\nContent-Length: 0\r\n\r\n" % API_KEY.encode(),
        b"GET /api/v1/me/notifications HTTP/1.1\r\nHost: x\r\n"
        b"Authorization: Bearer %s%s\r\n\r\n" % (user_jwt.encode(), b"A" * 9000),
        b"GET /api/v1/me/notifications HTTP/1.1\r\nHost: x\r\n"
        b"X-Padding: %s\r\nAuthorization: Bearer %s\r\n\r\n" % (b"p" * 9000, API_KEY.encode()),
        b"GET /api/v1/%s\x0a2026-01-01 ERROR forged HTTP/1.1\r\nHost: x\r\n\r\n" % (
            user_jwt.encode()),
    ]
    for request in requests:
        status, body = await _raw(node.url, request)
        assert 400 <= status < 500, (status, body)
        assert set(body) == {"error"} and body["error"]["code"] and body["error"]["message"]
    assert raw, "the refusals are logged"
    everything = text.getvalue() + "".join(
        r.getMessage() + logging.Formatter().formatException(r.exc_info) if r.exc_info
        else r.getMessage() for r in raw)
    for secret in (user_jwt, user_jwt.split(".")[1], user_jwt.split(".")[2], API_KEY):
        assert secret not in everything
    for line in text.getvalue().splitlines():
        assert line[:4].isdigit() or line.startswith("  | "), f"a forged line: {line!r}"


# Dev tokens only where nobody else can reach them (issue 12).

@pytest.mark.parametrize(("env", "dev", "warned"), [
    ({"TIDINGS_HOST": "0.0.0.0"}, False, False),
    ({"TIDINGS_HOST": "192.0.2.7"}, False, False),
    ({"TIDINGS_HOST": "127.0.0.1"}, True, False),
    ({"TIDINGS_HOST": "::1"}, True, False),
    ({"TIDINGS_HOST": "localhost"}, True, False),
    ({"TIDINGS_HOST": "0.0.0.0", "TIDINGS_DEV": "true"}, True, True),
    ({"TIDINGS_HOST": "127.0.0.1", "TIDINGS_DEV": "false"}, False, False),
])
async def test_dev_mode_only_on_loopback_unless_asked(settings, http, tmp_path, env, dev, warned):
    embedded = config.load({**env, "TIDINGS_DATA_DIR": str(tmp_path)})  # no URLs: embedded
    resolved = common.resolve(embedded)
    assert resolved.dev is dev and resolved.dev_mode is dev
    banner = serve.banner(resolved, False)
    assert ("WARNING: dev mode on" in banner) is warned
    assert ("demo inbox" in banner) is dev
    async with serve_node(replace(settings, dev=resolved.dev)) as node, \
            http.get(f"{node.url}/api/v1/dev/token?user=anyone") as r:
        assert r.status == (200 if dev else 404)
        assert ("token" in await r.json()) is dev
