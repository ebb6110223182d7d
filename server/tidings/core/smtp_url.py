"""``TIDINGS_SMTP_URL`` read into an :class:`SmtpTarget`; no I/O.

- ``smtps://[user:password@]host[:465]``: TLS from the first byte (implicit TLS).
- ``smtp://[user:password@]host[:25]``: STARTTLS when the server offers it,
  else plain (a local relay). On port 587 (submission) STARTTLS is required.
- ``?starttls=require`` refuses a server that does not offer STARTTLS (it is
  retried later rather than sent in the clear); ``?starttls=never`` stays plain.

Credentials are never sent in the clear: with a user name, STARTTLS is
required unless the host is a loopback address, and ``starttls=never`` with a
user name is an error there. User name and password are percent-decoded.
Every problem is a ``ValueError`` whose message completes "'<the URL>': ...".
"""

from __future__ import annotations

import ipaddress
from dataclasses import dataclass, field
from enum import StrEnum
from urllib.parse import parse_qs, unquote, urlsplit

SUBMISSION_PORT = 587


class Tls(StrEnum):
    IMPLICIT = "implicit"  # smtps://
    REQUIRE = "require"  # STARTTLS or no send
    AUTO = "auto"  # STARTTLS when offered
    NEVER = "never"  # plain


@dataclass(frozen=True, slots=True)
class SmtpTarget:
    host: str
    port: int
    tls: Tls
    username: str | None = None
    password: str | None = field(default=None, repr=False)


def is_loopback(host: str) -> bool:
    if host.lower() == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def parse_smtp_url(url: str) -> SmtpTarget:
    """The server, port, TLS mode and credentials of an ``smtp://`` or ``smtps://`` URL."""
    parts = urlsplit(url)
    if parts.scheme not in ("smtp", "smtps"):
        raise ValueError("must start with smtp:// or smtps://")
    try:
        port = parts.port
    except ValueError:
        port = 0
    if port == 0:
        raise ValueError("has a port that is not a number from 1 to 65535")
    host = parts.hostname
    if not host:
        raise ValueError("names no host (smtp://host:port)")
    if parts.path not in ("", "/") or parts.fragment:
        raise ValueError("has a path; only ?starttls=require|never may follow the host")
    query = parse_qs(parts.query, keep_blank_values=True)
    if set(query) - {"starttls"} or len(query.get("starttls", [])) > 1:
        raise ValueError("takes only ?starttls=require or ?starttls=never")
    asked = query.get("starttls", [None])[0]
    if asked not in (None, "require", "never"):
        raise ValueError("takes starttls=require or starttls=never")
    username = unquote(parts.username) if parts.username else None
    password = unquote(parts.password) if parts.password is not None else None
    if parts.scheme == "smtps":
        if asked is not None:
            raise ValueError("is TLS already (smtps://); starttls applies to smtp://")
        return SmtpTarget(host, port or 465, Tls.IMPLICIT, username, password)
    port = port or 25
    if asked == "never":
        if username and not is_loopback(host):
            raise ValueError("would send credentials in the clear (starttls=never with a"
                             " user name); use STARTTLS or smtps://")
        tls = Tls.NEVER
    elif asked == "require" or port == SUBMISSION_PORT or (username and not is_loopback(host)):
        tls = Tls.REQUIRE
    else:
        tls = Tls.AUTO
    return SmtpTarget(host, port, tls, username, password)
