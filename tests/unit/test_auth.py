"""User-token verification: the verifier against PyJWT's own ``jwt.decode`` (the reference),
for any claims, headers and damage; and the refusals that matter for security."""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import time
from collections.abc import Coroutine
from typing import Any

import jwt
import orjson
import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec, rsa
from hypothesis import event, example, given, note, settings
from hypothesis import strategies as st

from tidings import auth, config
from tidings.auth import Identity, TokenVerifier
from tidings.core.errors import AuthError
from tidings.core.ids import is_user_id
from tidings.core.jsonvalues import MAX_INT, MIN_INT

SECRET = "s" * 40
OTHER = "o" * 40
LEEWAY = 10.0


def done(coro: Coroutine[Any, Any, Identity]) -> Identity:
    """The result of a verification that needs no I/O (static keys never wait)."""
    try:
        coro.send(None)
    except StopIteration as stop:
        return stop.value
    raise AssertionError("verification waited on I/O")


def outcome(verifier: TokenVerifier, token: str) -> tuple[str, str]:
    try:
        return "ok", done(verifier.verify(token)).user_id
    except AuthError as exc:
        assert exc.status == 401 and exc.code in ("invalid_token", "token_expired")
        assert token not in exc.message
        return "refused", exc.code


def reference(token: str, audience: str | None, issuer: str | None) -> tuple[str, str]:
    """What PyJWT's decode says, with the rules Tidings adds (numeric dates, user ids)."""
    try:
        claims = jwt.decode(
            token, SECRET, algorithms=["HS256"], audience=audience, issuer=issuer,
            leeway=LEEWAY,
            options={"require": ["exp", "sub"], "verify_aud": audience is not None})
    except jwt.ExpiredSignatureError:
        return "refused", "token_expired"
    except jwt.PyJWTError:
        return "refused", "invalid_token"
    for name in ("exp", "nbf", "iat"):
        value = claims.get(name)
        if name in claims and (isinstance(value, bool) or not isinstance(value, int | float)
                               or not MIN_INT <= value <= MAX_INT):
            return "refused", "invalid_token"
    sub = claims["sub"]
    if not isinstance(sub, str) or not is_user_id(sub):
        return "refused", "invalid_token"
    return "ok", sub


def verifier(audience: str | None = None, issuer: str | None = None,
             **env: str) -> TokenVerifier:
    values = {"TIDINGS_JWT_SECRET": SECRET, "TIDINGS_JWT_LEEWAY": str(LEEWAY), **env}
    if audience:
        values["TIDINGS_JWT_AUDIENCE"] = audience
    if issuer:
        values["TIDINGS_JWT_ISSUER"] = issuer
    return TokenVerifier(config.load(values))


def b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


ABSENT = object()


def mostly(usual: object, others: st.SearchStrategy[object]) -> st.SearchStrategy[object]:
    """``usual`` about two times in three, else one of ``others``."""
    return st.one_of(st.just(usual), st.just(usual), others)


class Ago(float):
    """A date given as seconds from now, made absolute when the token is signed."""


# Dates far enough from the leeway's edge that whole and fractional seconds agree.
dates = st.one_of(
    st.one_of(st.integers(-10**7, -30), st.integers(-5, 5), st.integers(30, 10**7)).flatmap(
        lambda d: st.sampled_from([Ago(d), Ago(d + 0.5)])),
    st.sampled_from([True, False, None, "1", [], {}, 2**63, -(2**63) - 1, 1e300]))


def claims_strategy() -> st.SearchStrategy[dict[str, object]]:
    fields = {
        "exp": mostly(Ago(3600), st.one_of(st.just(ABSENT), dates)),
        "nbf": mostly(ABSENT, dates),
        "iat": mostly(ABSENT, dates),
        "sub": mostly("alice", st.sampled_from(
            [ABSENT, "42", "a" * 255, "a" * 256, "", "bad\nid", 7, None])),
        "aud": mostly(ABSENT, st.sampled_from(
            ["app", "app", ["app", "x"], "other", ["x"], [], ["app", 1], 5, ""])),
        "iss": mostly(ABSENT, st.sampled_from(["https://id", "https://id", "https://evil", 5,
                                               None])),
        "jti": mostly(ABSENT, st.just("j1")),
    }
    return st.fixed_dictionaries(fields).map(
        lambda c: {k: v for k, v in c.items() if v is not ABSENT})


def sign(claims: dict[str, object], alg: str, key: str, headers: dict[str, object]) -> str:
    """A compact JWS made by hand (PyJWT would refuse to make some of these)."""
    now = int(time.time())
    claims = {k: now + v if isinstance(v, Ago) else v for k, v in claims.items()}
    head = b64(json.dumps({"alg": alg, **headers}).encode())
    body = b64(json.dumps(claims).encode())
    digest = {"HS256": hashlib.sha256, "HS384": hashlib.sha384}.get(alg)
    mac = hmac.new(key.encode(), f"{head}.{body}".encode(), digest).digest() if digest else b""
    return f"{head}.{body}.{b64(mac)}"


def damage(token: str, how: str) -> str:
    head, body, sig = token.split(".")
    if how == "flip" and len(sig) > 2:
        return f"{head}.{body}.{sig[:-2]}{'A' if sig[-2] != 'A' else 'B'}{sig[-1]}"
    if how == "pad" and len(sig) % 4:
        return f"{head}.{body}.{sig}{'=' * (-len(sig) % 4)}"
    if how == "swap-body":
        return f"{head}.{b64(orjson.dumps({'sub': 'mallory', 'exp': 2**40}))}.{sig}"
    if how == "drop-sig":
        return f"{head}.{body}."
    if how == "four-parts":
        return f"{token}.{sig}"
    return token


@settings(max_examples=600, deadline=None)
@given(claims=claims_strategy(),
       alg=mostly("HS256", st.sampled_from(["HS384", "none"])),
       key=mostly(SECRET, st.just(OTHER)),
       headers=mostly({}, st.sampled_from([{"kid": "k1"}, {"typ": "JWT"}, {"kid": 5}])),
       how=mostly("none", st.sampled_from(["flip", "pad", "swap-body", "drop-sig",
                                           "four-parts"])),
       audience=st.sampled_from([None, "app"]), issuer=st.sampled_from([None, "https://id"]))
@example(claims={"sub": "alice", "exp": Ago(60)}, alg="HS256", key=SECRET, headers={},
         how="none", audience=None, issuer=None)
def test_verifier_agrees_with_pyjwt(claims, alg, key, headers, how, audience, issuer):
    token = damage(sign(claims, alg, key, headers), how)
    note(f"claims={claims} alg={alg} headers={headers} how={how} aud={audience} iss={issuer}")
    ours = outcome(verifier(audience, issuer), token)
    theirs = reference(token, audience, issuer)
    event(f"{ours[0]} {ours[1] if ours[0] != 'ok' else ''}")
    assert ours[0] == theirs[0], (ours, theirs)
    if ours[0] == "ok":
        assert ours == theirs
    elif ours[1] == "token_expired":
        assert theirs[1] == "token_expired"


def test_a_valid_token_gives_its_user_and_expiry():
    now = int(time.time())
    token = jwt.encode({"sub": "alice", "exp": now + 60}, SECRET, algorithm="HS256")
    assert done(verifier().verify(token)) == Identity("alice", float(now + 60))


@pytest.mark.parametrize(("name", "token"), [
    ("alg none", jwt.encode({"sub": "a", "exp": 9999999999}, None, algorithm="none")),
    ("alg none, signed anyway", "{}.{}.{}".format(
        b64(b'{"alg":"none"}'), b64(b'{"sub":"a","exp":9999999999}'), b64(b"x" * 32))),
    ("no alg", "{}.{}.{}".format(b64(b'{"typ":"JWT"}'), b64(b'{"sub":"a","exp":9999999999}'),
                                 b64(b"x" * 32))),
    ("crit header", jwt.encode({"sub": "a", "exp": 9999999999}, SECRET, algorithm="HS256",
                               headers={"crit": ["exp"], "exp": 1})),
    ("header not an object", "{}.{}.{}".format(b64(b"[1]"), b64(b"{}"), b64(b"x"))),
    ("not base64", "a!b.c.d"),
    ("two parts", "abc.def"),
    ("not ascii", "ab\u00e9.cd.ef"),
    ("oversized", "a" * 8193),
    ("empty", ""),
])
def test_refused_tokens(name, token):
    with pytest.raises(AuthError) as refused:
        done(verifier().verify(token))
    assert refused.value.code == "invalid_token"


def test_signature_must_be_canonical_base64url():
    token = jwt.encode({"sub": "a", "exp": int(time.time()) + 60}, SECRET, algorithm="HS256")
    head, body, sig = token.split(".")
    # HS256 signatures are 43 characters: the last carries 2 spare bits, which must be 0
    alphabet = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_"
    stray = alphabet[alphabet.index(sig[-1]) ^ 1]
    assert done(verifier().verify(token)).user_id == "a"
    with pytest.raises(AuthError):
        done(verifier().verify(f"{head}.{body}.{sig[:-1]}{stray}"))


def test_only_the_url_safe_alphabet():
    for n in range(100):
        token = jwt.encode({"sub": f"u{n}", "exp": int(time.time()) + 60}, SECRET,
                           algorithm="HS256")
        head, body, sig = token.split(".")
        if "-" in sig or "_" in sig:
            break
    assert done(verifier().verify(token)).user_id == f"u{n}"
    standard = sig.replace("-", "+").replace("_", "/")
    with pytest.raises(AuthError, match="malformed"):
        done(verifier().verify(f"{head}.{body}.{standard}"))


def _public_pem(key) -> str:
    return key.public_key().public_bytes(serialization.Encoding.PEM,
                                         serialization.PublicFormat.SubjectPublicKeyInfo).decode()


def test_public_keys_are_prepared_once_and_never_confused_with_secrets():
    rsa_key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    ec_key = ec.generate_private_key(ec.SECP256R1())
    claims = {"sub": "alice", "exp": int(time.time()) + 60}
    for key, alg in ((rsa_key, "RS256"), (ec_key, "ES256")):
        v = TokenVerifier(config.load({"TIDINGS_JWT_PUBLIC_KEY": _public_pem(key)}))
        assert done(v.verify(jwt.encode(claims, key, algorithm=alg))).user_id == "alice"
        # the other algorithm is allowed, but this key is not of its kind
        other = ec_key if alg == "RS256" else rsa_key
        other_alg = "ES256" if alg == "RS256" else "RS256"
        with pytest.raises(AuthError, match="does not match"):
            done(v.verify(jwt.encode(claims, other, algorithm=other_alg)))
        # HS256 keyed with the public key's text: the classic confusion attack
        with pytest.raises(AuthError, match="not allowed"):
            done(v.verify(jwt.encode(claims, _public_pem(key).encode()[:64],
                                     algorithm="HS256")))


@pytest.mark.parametrize(("header", "credential"), [
    ("Bearer abc.def.ghi", "abc.def.ghi"), ("bearer  key ", "key"), ("BEARER k", "k"),
    ("", None), ("Bearer", None), ("Bearer   ", None), ("Basic abc", None), ("abc", None),
])
def test_bearer_reads_the_credential_of_a_bearer_header_only(header, credential):
    assert auth.bearer(header) == credential


_SHARED = verifier()


@given(claims=claims_strategy(),
       alg=mostly("HS256", st.sampled_from(["HS384", "none"])),
       key=mostly(SECRET, st.just(OTHER)),
       headers=mostly({}, st.sampled_from([{"kid": "k1"}, {"typ": "JWT"}, {"kid": 5},
                                           {"crit": ["exp"]}])),
       how=mostly("none", st.sampled_from(["flip", "pad", "swap-body", "drop-sig",
                                           "four-parts"])))
def test_one_verifier_reused_agrees_with_pyjwt(claims, alg, key, headers, how):
    """A header read before (remembered by the verifier) decides nothing by itself."""
    token = damage(sign(claims, alg, key, headers), how)
    assert outcome(_SHARED, token)[0] == reference(token, None, None)[0]


def test_remembered_headers_are_bounded_and_a_known_header_still_needs_its_signature():
    v = verifier()
    now = int(time.time())
    for i in range(auth.HEADERS_KEPT * 3):
        token = jwt.encode({"sub": "a", "exp": now + 60}, SECRET, algorithm="HS256",
                           headers={"kid": f"k{i}"})
        assert done(v.verify(token)).user_id == "a"
        assert len(v._headers) <= auth.HEADERS_KEPT
    token = jwt.encode({"sub": "a", "exp": now + 60}, SECRET, algorithm="HS256")
    done(v.verify(token))
    forged = jwt.encode({"sub": "a", "exp": now + 60}, OTHER, algorithm="HS256")
    assert forged.split(".")[0] == token.split(".")[0]
    with pytest.raises(AuthError, match="signature"):
        done(v.verify(forged))
