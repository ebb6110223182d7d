"""VAPID (RFC 8292): the application server's P-256 key and the tokens that name it.

``TIDINGS_VAPID_PRIVATE_KEY`` holds the key as ``tidings vapid`` prints it (the
32-byte private number, base64url) or as PEM; :func:`load_key` reads either and
raises ValueError for anything else. :attr:`Vapid.public_key` is what a page
passes to ``pushManager.subscribe`` (``applicationServerKey``: the uncompressed
point, base64url). :meth:`Vapid.authorization` is the ``Authorization: vapid
t=<JWT>, k=<public key>`` header for one push service origin: an ES256 JWT with
``aud`` (the origin), ``exp`` (12 hours ahead; RFC 8292 allows at most 24) and
``sub`` (``mailto:`` or ``https:``), cached per origin until an hour before it
expires.
"""

from __future__ import annotations

import base64
import time
from collections.abc import Callable

import jwt
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec

LIFETIME = 12 * 3600
REFRESH_MARGIN = 3600


def _b64url(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def load_key(text: str) -> ec.EllipticCurvePrivateKey:
    """A P-256 private key from PEM or from its 32-byte number in base64url."""
    text = text.strip()
    if text.startswith("-----BEGIN"):
        try:
            key = serialization.load_pem_private_key(text.encode(), password=None)
        except (ValueError, TypeError):
            raise ValueError("is not a readable unencrypted PEM private key") from None
        if not isinstance(key, ec.EllipticCurvePrivateKey) or key.curve.name != "secp256r1":
            raise ValueError("is not a P-256 (prime256v1) key")
        return key
    try:
        raw = base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))
    except ValueError:
        raw = b""
    if len(raw) != 32:
        raise ValueError("must be a P-256 private key: 32 bytes in base64url (as `tidings vapid`"
                         " prints it) or PEM")
    try:
        return ec.derive_private_key(int.from_bytes(raw, "big"), ec.SECP256R1())
    except ValueError:
        raise ValueError("is not a valid P-256 private number") from None


def generate() -> tuple[str, str]:
    """A new key pair: (private key for TIDINGS_VAPID_PRIVATE_KEY, public key), base64url."""
    key = ec.generate_private_key(ec.SECP256R1())
    private = key.private_numbers().private_value.to_bytes(32, "big")
    return _b64url(private), public_key(key)


def public_key(key: ec.EllipticCurvePrivateKey) -> str:
    return _b64url(key.public_key().public_bytes(
        serialization.Encoding.X962, serialization.PublicFormat.UncompressedPoint))


class Vapid:
    """Signs VAPID tokens with one key for one subject."""

    def __init__(self, key: ec.EllipticCurvePrivateKey, subject: str,
                 clock: Callable[[], float] = time.time):
        self._key, self.subject, self._clock = key, subject, clock
        self.public_key = public_key(key)
        self._cache: dict[str, tuple[str, float]] = {}  # origin -> (header, exp)

    def authorization(self, origin: str) -> str:
        """The ``Authorization`` header value for a push service at ``origin``."""
        now = self._clock()
        cached = self._cache.get(origin)
        if cached is not None and now < cached[1] - REFRESH_MARGIN:
            return cached[0]
        exp = int(now) + LIFETIME
        token = jwt.encode({"aud": origin, "exp": exp, "sub": self.subject}, self._key,
                           algorithm="ES256", headers={"typ": "JWT"})
        header = f"vapid t={token}, k={self.public_key}"
        self._cache[origin] = (header, exp)
        return header
