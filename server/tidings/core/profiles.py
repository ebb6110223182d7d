"""The declared shape of a user's profile (``PUT /api/v1/users/{user_id}``).

An e-mail address is checked for its form only (one ``@``, no space, no-break
space or control character, at most 254 characters); a locale is a BCP 47 tag; a
timezone an IANA name (whether it exists is checked where the time-zone
database can be read, :mod:`tidings.services.profiles`).
"""

from __future__ import annotations

from typing import Annotated

from msgspec import Meta, Struct

from .ids import whole

#: Written with explicit ranges (no ``\\s``): Python's and ECMAScript's differ (U+0085).
EMAIL_PATTERN = whole("^[^@\\u0000-\\u0020\\u007f-\\u00a0]{1,64}"
                      "@[^@\\u0000-\\u0020\\u007f-\\u00a0]{1,189}$")
LOCALE_PATTERN = whole("^[A-Za-z]{2,8}(-[A-Za-z0-9]{1,8})*$")


class ProfileRequest(Struct, forbid_unknown_fields=True):
    """A user's profile; fields left out are cleared (PUT replaces the profile)."""

    email: Annotated[str, Meta(pattern=EMAIL_PATTERN, max_length=254)] | None = None
    name: Annotated[str, Meta(max_length=255, pattern="^[^\\u0000]*$")] | None = None
    locale: Annotated[str, Meta(pattern=LOCALE_PATTERN, max_length=35)] | None = None
    timezone: Annotated[str, Meta(max_length=64)] | None = None
