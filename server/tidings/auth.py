"""Who is calling: user JWTs (HS256 secret, RS/ES public key, or JWKS) and producer API keys.

Contracts: only the configured algorithms verify (``none`` never does); ``exp``
and ``sub`` are required, ``aud``/``iss`` checked when configured, ``exp`` and
``nbf`` with a small leeway; ``exp``, ``nbf`` and ``iat`` must be JSON numbers
and ``sub`` must follow the user-id rule of :mod:`tidings.core.schemas`. A
JWKS is fetched once, cached, and fetched again when a token names an unknown
``kid`` (at most once per ``JWKS_MIN_REFRESH`` seconds). API keys and admin keys are
compared in constant time. No token or key is logged.
"""

from __future__ import annotations

import asyncio
import hmac
import time
from dataclasses import dataclass
from pathlib import Path

import aiohttp
import jwt

from .config import Settings
from .core.errors import AuthError
from .core.ids import USER_ID_RULE, is_user_id
from .core.jsonvalues import MAX_INT, MIN_INT

JWKS_MIN_REFRESH = 10.0


@dataclass(frozen=True, slots=True)
class Identity:
    user_id: str
    expires_at: float


class TokenVerifier:
    """Verifies user tokens against the settings' single key source."""

    def __init__(self, settings: Settings):
        self._s = settings
        self._algorithms = list(settings.allowed_algorithms())
        self._key: object | None = None
        if settings.jwt_secret:
            self._key = settings.jwt_secret
        elif settings.jwt_public_key:
            pem = settings.jwt_public_key
            if pem.startswith("@"):
                pem = Path(pem[1:]).read_text()
            self._key = pem
        self._jwks: dict[str, jwt.PyJWK] = {}
        self._jwks_fetched = 0.0
        self._jwks_lock = asyncio.Lock()

    async def verify(self, token: str) -> Identity:
        """The identity in a valid token, or AuthError saying what is wrong (never the token)."""
        if not token or len(token) > 8192:
            raise AuthError("missing or oversized token", code="invalid_token")
        try:
            header = jwt.get_unverified_header(token)
        except jwt.PyJWTError:
            raise AuthError("malformed token", code="invalid_token") from None
        alg = header.get("alg")
        if alg not in self._algorithms:
            raise AuthError(f"token algorithm {alg!r} is not allowed", code="invalid_token")
        key = self._key if self._key is not None else await self._jwk(header.get("kid"))
        try:
            claims = jwt.decode(
                token, key, algorithms=self._algorithms, audience=self._s.jwt_audience,
                issuer=self._s.jwt_issuer, leeway=self._s.jwt_leeway,
                options={"require": ["exp", "sub"], "verify_aud": self._s.jwt_audience is not None},
            )
        except jwt.ExpiredSignatureError:
            raise AuthError("token expired", code="token_expired") from None
        except jwt.InvalidAudienceError:
            raise AuthError("token audience is not accepted", code="invalid_token") from None
        except jwt.InvalidIssuerError:
            raise AuthError("token issuer is not accepted", code="invalid_token") from None
        except jwt.InvalidSignatureError:
            raise AuthError("token signature is invalid", code="invalid_token") from None
        except jwt.MissingRequiredClaimError as exc:
            raise AuthError(f"token has no {exc.claim!r} claim", code="invalid_token") from None
        except jwt.PyJWTError as exc:
            raise AuthError(f"invalid token ({type(exc).__name__})", code="invalid_token") from None
        for name in ("exp", "nbf", "iat"):
            if name in claims and not _is_number(claims[name]):
                raise AuthError(f"token claim {name!r} must be a number", code="invalid_token")
        sub = claims["sub"]
        if not isinstance(sub, str) or not is_user_id(sub):
            raise AuthError(f"token subject is not a user id ({USER_ID_RULE})",
                            code="invalid_token")
        return Identity(sub, float(claims["exp"]))

    async def _jwk(self, kid: object) -> object:
        if not isinstance(kid, str):
            raise AuthError("token has no 'kid' header", code="invalid_token")
        if kid not in self._jwks:
            async with self._jwks_lock:
                if kid not in self._jwks and time.monotonic() - self._jwks_fetched > (
                        JWKS_MIN_REFRESH if self._jwks_fetched else 0):
                    await self._fetch_jwks()
        jwk = self._jwks.get(kid)
        if jwk is None:
            raise AuthError("token key id is unknown", code="invalid_token")
        return jwk.key

    async def _fetch_jwks(self) -> None:
        self._jwks_fetched = time.monotonic()
        url = self._s.jwt_jwks_url
        assert url is not None
        try:
            timeout = aiohttp.ClientTimeout(total=5)
            async with aiohttp.ClientSession(timeout=timeout) as http, http.get(url) as resp:
                resp.raise_for_status()
                data = await resp.json(content_type=None)
            keys = jwt.PyJWKSet.from_dict(data).keys
        except (aiohttp.ClientError, TimeoutError, jwt.PyJWTError, ValueError) as exc:
            raise AuthError(f"cannot fetch signing keys ({type(exc).__name__})",
                            code="jwks_unavailable") from None
        self._jwks = {k.key_id: k for k in keys if k.key_id}


def _is_number(value: object) -> bool:
    """A NumericDate (RFC 7519): a JSON number within 64 bits, not a string or a boolean."""
    return (isinstance(value, int | float) and not isinstance(value, bool)
            and MIN_INT <= value <= MAX_INT)


def _one_of(presented: str, keys: tuple[str, ...]) -> bool:
    """Whether ``presented`` equals one of ``keys``: every key compared in constant time."""
    given = presented.encode()
    ok = False
    for key in keys:
        ok |= hmac.compare_digest(given, key.encode())
    return ok


def check_api_key(presented: str | None, keys: tuple[str, ...]) -> None:
    """Raise AuthError unless ``presented`` equals one of ``keys`` (constant-time, all compared)."""
    if not presented:
        raise AuthError("an API key is required (Authorization: Bearer <key>)")
    if not _one_of(presented, keys):
        raise AuthError("API key is not valid", code="invalid_api_key")


def check_admin_key(presented: str | None, keys: tuple[str, ...]) -> None:
    """Raise AuthError unless ``presented`` is one of the admin ``keys`` (``TIDINGS_ADMIN_KEYS``;
    constant-time, all compared). Producer keys are not admin keys."""
    if not keys:
        raise AuthError("no admin key is configured (TIDINGS_ADMIN_KEYS)",
                        code="invalid_admin_key")
    if not presented:
        raise AuthError("an admin key is required (Authorization: Bearer <key>)")
    if not _one_of(presented, keys):
        raise AuthError("admin key is not valid", code="invalid_admin_key")


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
