"""Who may use the operator's console: an admin key (``TIDINGS_ADMIN_KEYS``), and its id.

Contracts: with no admin key configured the console does not exist (404 for
every admin route). A request without a bearer key is a 401, one whose key
matches none of the admin keys a 403; the presented key is compared with
every admin key in constant time (no early exit, so timing tells nothing of
which key or how much of it matched). Producer API keys are not admin keys.
An admin is named by :func:`key_id`, a fingerprint of its key (the audit log
stores it); no key is ever logged or stored.
"""

from __future__ import annotations

import hashlib
import hmac

from aiohttp import web

from ..core import errors
from ..core.errors import AuthError, NotFound
from .http import bearer, services


def key_id(key: str) -> str:
    """The id of an admin key: ``key-`` and the first 12 hex digits of its SHA-256."""
    return "key-" + hashlib.sha256(key.encode()).hexdigest()[:12]


def check_admin_key(presented: str | None, keys: tuple[str, ...]) -> str:
    """The id of the admin key ``presented`` equals; raises NotFound when ``keys`` is empty,
    AuthError (401) when nothing was presented, TidingsError 403 when it matches none."""
    if not keys:
        raise NotFound("the operator's console is off (no TIDINGS_ADMIN_KEYS)")
    if not presented:
        raise AuthError("an admin key is required (Authorization: Bearer <admin key>)")
    given = presented.encode("utf-8", "surrogateescape")  # bytes no key holds stay bytes
    found: str | None = None
    for key in keys:
        if hmac.compare_digest(given, key.encode()):
            found = key
    if found is None:
        raise errors.INVALID_ADMIN_KEY.error("admin key is not valid")
    return key_id(found)


def admin(request: web.Request) -> str:
    """The id of the calling admin's key (see :func:`check_admin_key`)."""
    return check_admin_key(bearer(request), services(request).settings.admin_keys)


def console_enabled(request: web.Request) -> None:
    """404 unless admin keys are configured (the console page itself asks for the key)."""
    if not services(request).settings.admin_keys:
        raise NotFound("the operator's console is off (no TIDINGS_ADMIN_KEYS)")
