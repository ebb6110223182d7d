"""Message encryption for Web Push (RFC 8291) in the ``aes128gcm`` content coding (RFC 8188).

:func:`encrypt` seals one push message for one subscription: an ECDH agreement
between a fresh P-256 key of the server and the browser's ``p256dh`` key, mixed
with the subscription's ``auth`` secret, gives the content key and nonce; the
body is the aes128gcm header (salt, record size, the server's public key) and
one record (the plaintext, the last-record delimiter 0x02, the GCM tag). A key
that is not a P-256 point raises :class:`BadSubscriptionKey`.
"""

from __future__ import annotations

import os
import struct

from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from cryptography.hazmat.primitives.kdf.hkdf import HKDF

RECORD_SIZE = 4096
_UNCOMPRESSED = serialization.PublicFormat.UncompressedPoint
_X962 = serialization.Encoding.X962


class BadSubscriptionKey(ValueError):
    """The subscription's ``p256dh`` is not a P-256 public key (or ``auth`` not 16 bytes)."""


def _hkdf(salt: bytes, ikm: bytes, info: bytes, length: int) -> bytes:
    return HKDF(algorithm=hashes.SHA256(), length=length, salt=salt, info=info).derive(ikm)


def encrypt(plaintext: bytes, p256dh: bytes, auth: bytes, *, salt: bytes | None = None,
            server_key: ec.EllipticCurvePrivateKey | None = None) -> bytes:
    """The aes128gcm body of ``plaintext`` for the subscription's keys (raw bytes).

    ``salt`` and ``server_key`` are fresh for every message unless given (tests pin them).
    """
    if len(auth) != 16:
        raise BadSubscriptionKey("the auth secret is not 16 bytes")
    try:
        ua_public = ec.EllipticCurvePublicKey.from_encoded_point(ec.SECP256R1(), p256dh)
    except ValueError:
        raise BadSubscriptionKey("p256dh is not a P-256 public key") from None
    if len(plaintext) + 17 > RECORD_SIZE:
        raise ValueError("a push message is one record of at most 4079 bytes")
    salt = os.urandom(16) if salt is None else salt
    server_key = server_key or ec.generate_private_key(ec.SECP256R1())
    as_public = server_key.public_key().public_bytes(_X962, _UNCOMPRESSED)
    shared = server_key.exchange(ec.ECDH(), ua_public)
    ikm = _hkdf(auth, shared, b"WebPush: info\x00" + p256dh + as_public, 32)
    cek = _hkdf(salt, ikm, b"Content-Encoding: aes128gcm\x00", 16)
    nonce = _hkdf(salt, ikm, b"Content-Encoding: nonce\x00", 12)
    record = AESGCM(cek).encrypt(nonce, plaintext + b"\x02", None)
    return salt + struct.pack("!IB", RECORD_SIZE, len(as_public)) + as_public + record
