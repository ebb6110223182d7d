"""The identifier rules: user ids and device tokens, one place for every edge.

A user id is what a token's ``sub`` holds, what a publish names as a
recipient and what ``POST /api/v1/tokens`` mints for; a device token is what
a phone registers and what a device path names. Patterns are given both as
JSON Schema (ECMAScript) text for the API description and as whole-string
matches here: ``$`` alone would let a trailing newline through. A pattern that
only a schema checks is made with :func:`whole` (a schema's check is a search).
"""

from __future__ import annotations

import base64
import hashlib
import re

from . import errors
from .errors import ValidationError


def whole(pattern: str) -> str:
    """``pattern`` (``^...$``) matching whole strings only, in Python as in ECMAScript:
    Python's ``$`` also matches before a final newline, so ``^[a-z]+$`` finds ``"fr\\n"``."""
    if not (pattern.startswith("^") and pattern.endswith("$")):
        raise ValueError(f"not an anchored pattern: {pattern!r}")
    return pattern[:-1] + "(?!\\n)$"


#: 1 to 255 characters, none of them a control character (C0, DEL or C1).
USER_ID_PATTERN = "^[^\\u0000-\\u001f\\u007f-\\u009f]{1,255}$"
USER_ID_RULE = "user ids are 1 to 255 characters with no control characters"
#: APNs: hex, 32 to 100 bytes. FCM: registration tokens of URL-safe text.
APNS_TOKEN_PATTERN = "^(?:[0-9a-fA-F]{2}){32,100}$"
FCM_TOKEN_PATTERN = "^[A-Za-z0-9_:\\-]{20,4096}$"
#: Web Push: a browser subscription's endpoint URL; its device token is derived from it.
MAX_ENDPOINT_CHARS = 2048
WEBPUSH_TOKEN_PREFIX = "webpush-"

_USER_ID_RE = re.compile("[^\\x00-\\x1f\\x7f-\\x9f]{1,255}")
_CONTROL_RE = re.compile("[\\x00-\\x1f\\x7f-\\x9f]")
_APNS_TOKEN_RE = re.compile(APNS_TOKEN_PATTERN)
_FCM_TOKEN_RE = re.compile(FCM_TOKEN_PATTERN)


def user_id(value: str | int) -> str:
    """A user id as text (producers may send Django's integer ids), or ValidationError
    with code ``invalid_user_id``."""
    text = str(value)
    if not is_user_id(text):
        raise errors.INVALID_USER_ID.error(USER_ID_RULE)
    return text


def user_ids(values: list[str | int]) -> list[str]:
    """:func:`user_id` of each value, in order, for values whose texts are already 1 to
    255 characters (a schema's lengths): one scan of them all for a control character,
    not one match each (a publish names up to 10,000)."""
    if _CONTROL_RE.search("".join([v for v in values if type(v) is str])) is None:
        return [v if type(v) is str else str(v) for v in values]
    return [user_id(v) for v in values]  # raises on the first that breaks the rule


def is_user_id(text: str) -> bool:
    """The user-id rule of :data:`USER_ID_PATTERN`, as a whole-string match."""
    return _USER_ID_RE.fullmatch(text) is not None


def check_device_token(platform: str, token: str) -> None:
    """APNs tokens are hex (32+ bytes); FCM registration tokens are URL-safe text."""
    if platform == "apns" and not _APNS_TOKEN_RE.fullmatch(token):
        raise ValidationError("an APNs device token is an even number (64 to 200) of hex digits")
    if platform == "fcm" and not _FCM_TOKEN_RE.fullmatch(token):
        raise ValidationError("an FCM registration token is 20 to 4096 characters of"
                              " A-Z a-z 0-9 _ : -")


def webpush_token(endpoint: str) -> str:
    """A Web Push device's token: ``webpush-`` and the endpoint's SHA-256 in base64url (an
    endpoint is a URL, not a path segment). The same endpoint always gives the same token."""
    digest = base64.urlsafe_b64encode(hashlib.sha256(endpoint.encode()).digest())
    return WEBPUSH_TOKEN_PREFIX + digest.rstrip(b"=").decode()


def is_device_token(text: str) -> bool:
    """Whether ``text`` could be a token of any platform (a path that cannot is a 404)."""
    return bool(_APNS_TOKEN_RE.fullmatch(text) or _FCM_TOKEN_RE.fullmatch(text))
