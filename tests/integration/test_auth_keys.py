"""User tokens signed with public keys: RS256/ES256 PEM keys and a JWKS URL (served locally)."""

from __future__ import annotations

import json
import time

import jwt
import pytest
from aiohttp import web
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec, rsa

from tidings import config
from tidings.auth import TokenVerifier
from tidings.core.errors import AuthError


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
