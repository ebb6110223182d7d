"""One-click unsubscribe links of e-mails (RFC 8058): signed tokens, no I/O, no clock.

A token names one user and one type, for the ``email`` channel only:
``<payload>.<mac>``, the payload the base64url of the JSON ``[user_id, type]``
and the mac the base64url HMAC-SHA256 of ``email``, a NUL and the payload, with
a key derived from the server's secret (:func:`signing_key`). It has no expiry:
changing the secret voids every link sent. Contracts:

- :func:`token` and :func:`read` are inverse for any user id and type name.
- :func:`read` raises a 403 ``invalid_unsubscribe_token``
  for anything not made by :func:`token` with the same key: a changed payload or
  mac, another key, a token of another channel, bytes that are no token.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import json
from urllib.parse import quote

from . import errors
from .errors import TidingsError
from .typedefs import is_type_name

CHANNEL = b"email"
PATH = "/api/v1/unsubscribe"
MAX_TOKEN = 2048  # characters; longer is refused before any decoding
_PURPOSE = b"tidings one-click unsubscribe v1"


def signing_key(secret: str) -> bytes:
    """The key tokens are signed with, derived from ``secret`` (never the secret itself,
    so a token's mac tells nothing of the key that signs user tokens)."""
    return hmac.new(secret.encode(), _PURPOSE, hashlib.sha256).digest()


def _b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode("ascii")


def _mac(key: bytes, payload: str) -> str:
    return _b64(hmac.new(key, CHANNEL + b"\0" + payload.encode("ascii"), hashlib.sha256)
                .digest())


def token(key: bytes, user_id: str, kind: str) -> str:
    """The token turning e-mail off for ``kind`` for ``user_id``."""
    payload = _b64(json.dumps([user_id, kind], ensure_ascii=True,
                              separators=(",", ":")).encode("ascii"))
    return f"{payload}.{_mac(key, payload)}"


def link(base_url: str, key: bytes, user_id: str, kind: str) -> str:
    """The one-click URL under ``base_url`` (the server's public URL, no trailing slash)."""
    return f"{base_url}{PATH}?token={quote(token(key, user_id, kind), safe='')}"


def _refused() -> TidingsError:
    return errors.INVALID_UNSUBSCRIBE_TOKEN.error(
        "this unsubscribe link is not valid (changed, or signed with a secret this server no"
        " longer has)")


def read(key: bytes, text: str) -> tuple[str, str]:
    """(user id, type) of a token :func:`token` made with ``key``; raises if it did not."""
    if not isinstance(text, str) or len(text) > MAX_TOKEN or not text.isascii():
        raise _refused()
    payload, dot, mac = text.partition(".")
    if not dot or not hmac.compare_digest(mac.encode("ascii"), _mac(key, payload).encode()):
        raise _refused()
    try:
        found = json.loads(base64.urlsafe_b64decode(payload + "=" * (-len(payload) % 4)))
    except (binascii.Error, ValueError):
        raise _refused() from None
    if (not isinstance(found, list) or len(found) != 2
            or not all(isinstance(v, str) for v in found) or not is_type_name(found[1])):
        raise _refused()
    return found[0], found[1]
