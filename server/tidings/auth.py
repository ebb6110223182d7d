"""Who is calling: user JWTs (HS256 secret, RS/ES public key, or JWKS) and producer API keys.

Contracts: only the configured algorithms verify (``none`` never does); ``exp``
and ``sub`` are required, ``aud``/``iss`` checked when configured, ``exp``,
``nbf`` and ``iat`` with a small leeway (``nbf`` and ``iat`` may not lie in the
future); ``exp``, ``nbf`` and ``iat`` must be JSON numbers and ``sub`` must
follow the user-id rule of :mod:`tidings.core.requests`. A token is a compact
JWS of three base64url parts (canonical, padding optional); a header naming
critical extensions (``crit``, ``b64``) or a non-string ``kid`` is refused.
The signature is checked before any claim is read.

Keys are prepared once, not per token: the secret or public key for each
allowed algorithm when the verifier is made, each JWKS key when the set is
fetched (a JWK that names its ``alg`` verifies that algorithm only). A header
segment accepted once is not decoded again (up to ``HEADERS_KEPT`` distinct
ones are remembered): a node's tokens mostly share one header. A JWKS
is fetched once, cached, and fetched again when a token names an unknown
``kid`` (at most once per ``JWKS_MIN_REFRESH`` seconds). API keys and admin keys are
compared in constant time. No token or key is logged.
"""

from __future__ import annotations

import asyncio
import binascii
import hmac
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import aiohttp
import jwt
import orjson
from jwt.algorithms import Algorithm, get_default_algorithms

from .config import Settings
from .core import errors
from .core.errors import AuthError
from .core.ids import USER_ID_RULE, is_user_id
from .core.jsonvalues import MAX_INT, MIN_INT

JWKS_MIN_REFRESH = 10.0
MAX_TOKEN = 8192
#: Distinct accepted token headers remembered (then forgotten all at once): the header
#: of a node's tokens is decoded and checked once, not per connect.
HEADERS_KEPT = 64

_FROM_URLSAFE = bytes.maketrans(b"-_", b"+/")
_TO_URLSAFE = bytes.maketrans(b"+/", b"-_")

#: The HMAC algorithms' hashes (their prepared keys are bytes).
_HMAC = {"HS256": "sha256", "HS384": "sha384", "HS512": "sha512"}


@dataclass(frozen=True, slots=True)
class Identity:
    user_id: str
    expires_at: float


def _bad(message: str, kind: errors.ErrorKind = errors.INVALID_TOKEN) -> AuthError:
    return AuthError(message, kind=kind)


def _part(segment: bytes) -> bytes:
    """One base64url part, decoded; only the canonical encoding of its bytes is accepted
    (padding optional): a character outside the alphabet, or stray bits past the last
    byte, and the bytes would not encode back to the same text."""
    stripped = segment.rstrip(b"=")
    if len(segment) - len(stripped) > 2 or (stripped != segment and len(segment) % 4):
        raise _bad("malformed token")
    try:
        decoded = binascii.a2b_base64(
            stripped.translate(_FROM_URLSAFE) + b"=" * (-len(stripped) % 4))
    except binascii.Error:
        raise _bad("malformed token") from None
    if binascii.b2a_base64(decoded, newline=False).translate(_TO_URLSAFE).rstrip(b"=") \
            != stripped:
        raise _bad("malformed token")
    return decoded


def _object(data: bytes) -> dict[str, Any]:
    try:
        value = orjson.loads(data)
    except orjson.JSONDecodeError:
        raise _bad("malformed token") from None
    if not isinstance(value, dict):
        raise _bad("malformed token")
    return value


def _is_number(value: object) -> bool:
    """A NumericDate (RFC 7519): a JSON number within 64 bits, not a string or a boolean.

    A float must lie strictly inside: the JSON parser reads an integer past 64
    bits as the nearest float, which may equal a bound.
    """
    if isinstance(value, int) and not isinstance(value, bool):
        return MIN_INT <= value <= MAX_INT
    return isinstance(value, float) and MIN_INT < value < MAX_INT


def _signed(algorithm: Algorithm, alg: str, key: Any, message: bytes, signature: bytes) -> bool:
    """Whether ``signature`` is ``message``'s under ``key`` (HMAC: one C call, compared
    in constant time)."""
    digest = _HMAC.get(alg)
    if digest is not None:
        return hmac.compare_digest(hmac.digest(key, message, digest), signature)
    try:
        return bool(algorithm.verify(message, key, signature))
    except (ValueError, TypeError, AttributeError):  # e.g. a private key was configured
        return False


def _prepared(algorithm: Algorithm, key: Any) -> Any | None:
    """``key`` ready for ``algorithm``, or None if it is no key of that kind."""
    try:
        return algorithm.prepare_key(key)
    except (jwt.PyJWTError, ValueError, TypeError):
        return None


class TokenVerifier:
    """Verifies user tokens against the settings' single key source."""

    def __init__(self, settings: Settings):
        self._s = settings
        known = get_default_algorithms()
        self._algorithms = {name: known[name] for name in settings.allowed_algorithms()
                            if name in known and name != "none"}
        #: algorithm name -> prepared key (a secret or a public key); empty with a JWKS
        self._keys: dict[str, Any] = {}
        source: str | None = settings.jwt_secret or settings.jwt_public_key
        if source is not None and source.startswith("@") and not settings.jwt_secret:
            source = Path(source[1:]).read_text()
        if source:
            for name, algorithm in self._algorithms.items():
                key = _prepared(algorithm, source)
                if key is not None:
                    self._keys[name] = key
        self._jwks: dict[str, dict[str, Any]] = {}  # kid -> algorithm name -> prepared key
        self._jwks_fetched = 0.0
        self._jwks_lock = asyncio.Lock()
        #: accepted header segments -> (alg, kid): a node's tokens mostly share a few
        self._headers: dict[bytes, tuple[str, str | None]] = {}

    async def verify(self, token: str) -> Identity:
        """The identity in a valid token, or AuthError saying what is wrong (never the token)."""
        if not token or len(token) > MAX_TOKEN:
            raise _bad("missing or oversized token")
        try:
            raw = token.encode("ascii")
        except UnicodeEncodeError:
            raise _bad("malformed token") from None
        parts = raw.split(b".")
        if len(parts) != 3:
            raise _bad("malformed token")
        alg, kid = self._header(parts[0])
        keys = self._keys if self._s.jwt_jwks_url is None else await self._jwk(kid)
        key = keys.get(alg)
        if key is None:
            raise _bad(f"token algorithm {alg!r} does not match the signing key")
        signed = raw[:len(parts[0]) + 1 + len(parts[1])]
        if not _signed(self._algorithms[alg], alg, key, signed, _part(parts[2])):
            raise _bad("token signature is invalid")
        return self._identity(_object(_part(parts[1])))

    def _header(self, segment: bytes) -> tuple[str, str | None]:
        """The algorithm and key id of an acceptable header segment (AuthError otherwise);
        read once per distinct segment (the cache holds only accepted ones)."""
        known = self._headers.get(segment)
        if known is not None:
            return known
        header = _object(_part(segment))
        alg = header.get("alg")
        if not isinstance(alg, str) or alg not in self._algorithms:
            raise _bad(f"token algorithm {alg!r} is not allowed"[:120])
        kid = header.get("kid")
        if "crit" in header or "b64" in header or (kid is not None and not isinstance(kid, str)):
            raise _bad("token header is not supported (crit, b64 or a non-string kid)")
        if len(self._headers) >= HEADERS_KEPT:
            self._headers.clear()
        self._headers[segment] = (alg, kid)
        return alg, kid

    def _identity(self, claims: dict[str, Any]) -> Identity:
        """The checked claims of a token whose signature is valid."""
        s = self._s
        for name in ("exp", "sub"):
            if claims.get(name) is None:
                raise _bad(f"token has no {name!r} claim")
        for name in ("exp", "nbf", "iat"):
            if name in claims and not _is_number(claims[name]):
                raise _bad(f"token claim {name!r} must be a number")
        now = time.time()
        for name in ("nbf", "iat"):
            if name in claims and claims[name] > now + s.jwt_leeway:
                raise _bad(f"token is not valid yet ({name})")
        exp = claims["exp"]
        if exp <= now - s.jwt_leeway:
            raise _bad("token expired", errors.TOKEN_EXPIRED)
        if s.jwt_issuer is not None:
            if claims.get("iss") is None:
                raise _bad("token has no 'iss' claim")
            if claims["iss"] != s.jwt_issuer:
                raise _bad("token issuer is not accepted")
        if s.jwt_audience is not None:
            aud = claims.get("aud")
            if not aud:
                raise _bad("token has no 'aud' claim")
            audiences = [aud] if isinstance(aud, str) else aud
            if (not isinstance(audiences, list) or s.jwt_audience not in audiences
                    or not all(isinstance(a, str) for a in audiences)):
                raise _bad("token audience is not accepted")
        sub = claims["sub"]
        if not isinstance(sub, str) or not is_user_id(sub):
            raise _bad(f"token subject is not a user id ({USER_ID_RULE})")
        return Identity(sub, float(exp))

    async def _jwk(self, kid: str | None) -> dict[str, Any]:
        """The prepared keys (by algorithm) of JWKS key ``kid``."""
        if kid is None:
            raise _bad("token has no 'kid' header")
        if kid not in self._jwks:
            async with self._jwks_lock:
                if kid not in self._jwks and time.monotonic() - self._jwks_fetched > (
                        JWKS_MIN_REFRESH if self._jwks_fetched else 0):
                    await self._fetch_jwks()
        keys = self._jwks.get(kid)
        if keys is None:
            raise _bad("token key id is unknown")
        return keys

    async def _fetch_jwks(self) -> None:
        self._jwks_fetched = time.monotonic()
        url = self._s.jwt_jwks_url
        assert url is not None
        try:
            timeout = aiohttp.ClientTimeout(total=5)
            async with aiohttp.ClientSession(timeout=timeout) as http, http.get(url) as resp:
                resp.raise_for_status()
                data = await resp.json(content_type=None)
            entries = data["keys"]
            if not isinstance(entries, list):
                raise ValueError("keys is not a list")
            found = {}
            for entry in entries:
                if not isinstance(entry, dict) or not isinstance(entry.get("kid"), str):
                    continue
                try:
                    jwk = jwt.PyJWK.from_dict(entry)
                except jwt.PyJWTError:
                    continue  # a key of a kind this server cannot use (PyJWKSet skips them too)
                named = entry.get("alg")
                found[entry["kid"]] = {
                    name: key for name, algorithm in self._algorithms.items()
                    if named in (None, name)
                    and (key := _prepared(algorithm, jwk.key)) is not None}
        except (aiohttp.ClientError, TimeoutError, jwt.PyJWTError, ValueError, KeyError,
                TypeError) as exc:
            raise _bad(f"cannot fetch signing keys ({type(exc).__name__})",
                       errors.JWKS_UNAVAILABLE) from None
        self._jwks = found


def _one_of(presented: str, keys: tuple[str, ...]) -> bool:
    """Whether ``presented`` equals one of ``keys``: every key compared in constant time."""
    given = presented.encode("utf-8", "surrogateescape")  # bytes no key holds stay bytes
    ok = False
    for key in keys:
        ok |= hmac.compare_digest(given, key.encode())
    return ok


def bearer(authorization: str) -> str | None:
    """The credential of an ``Authorization: Bearer <credential>`` header value, or None."""
    scheme, _, value = authorization.partition(" ")
    return value.strip() if scheme.lower() == "bearer" and value.strip() else None


def check_api_key(presented: str | None, keys: tuple[str, ...]) -> None:
    """Raise AuthError unless ``presented`` equals one of ``keys`` (constant-time, all compared)."""
    if not presented:
        raise AuthError("an API key is required (Authorization: Bearer <key>)")
    if not _one_of(presented, keys):
        raise errors.INVALID_API_KEY.error("API key is not valid")


def mint(secret: str, user_id: str, ttl: int, *, audience: str | None = None,
         issuer: str | None = None, now: float | None = None) -> str:
    """An HS256 user token (dev tokens and tests); the server never needs to mint in production."""
    issued = int(time.time() if now is None else now)
    claims: dict[str, object] = {"sub": user_id, "iat": issued, "exp": issued + ttl}
    if audience:
        claims["aud"] = audience
    if issuer:
        claims["iss"] = issuer
    return jwt.encode(claims, secret, algorithm="HS256")
