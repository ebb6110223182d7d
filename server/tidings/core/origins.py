"""Which browser origins may open a socket: a pure rule, no I/O.

Accepted are: an ``Origin`` listed in ``TIDINGS_ALLOWED_ORIGINS`` (any, if
``*`` is listed); the origin of ``TIDINGS_PUBLIC_URL``; and, only when the
server listens on a loopback address, the loopback origins
``http(s)://127.0.0.1:*``, ``http(s)://localhost:*`` and ``http(s)://[::1]:*``
(the demo page on a developer's machine). An origin is never accepted because
its host equals the request's ``Host`` header: under DNS rebinding an
attacker's page has exactly that host. A request without ``Origin`` does not
come from a browser page and is not judged here.

The same attack reaches the HTTP API of a server on a loopback address: the
page's requests name the attacker's host. What only this machine's users may
have (dev tokens) therefore goes, on a loopback bind, only to requests whose
``Host`` names a loopback address or the public URL's host (:func:`host_allowed`).
"""

from __future__ import annotations

import ipaddress
from urllib.parse import urlsplit

LOOPBACK_HOSTS = frozenset({"127.0.0.1", "localhost", "::1"})
_DEFAULT_PORTS = {"http": 80, "https": 443}


def _parts(url: str) -> tuple[str, str, int] | None:
    """(scheme, host, port) of an http(s) URL, lower-cased; None if it is not one."""
    try:
        split = urlsplit(url.strip())
        port = split.port
    except ValueError:
        return None
    scheme, host = split.scheme.lower(), (split.hostname or "").lower()
    if scheme not in _DEFAULT_PORTS or not host:
        return None
    return scheme, host, port if port is not None else _DEFAULT_PORTS[scheme]


def origin_of(url: str) -> str | None:
    """The origin (``scheme://host:port``, normalized) of an http(s) URL, or None."""
    parts = _parts(url)
    if parts is None:
        return None
    scheme, host, port = parts
    return f"{scheme}://{f'[{host}]' if ':' in host else host}:{port}"


def is_loopback(host: str) -> bool:
    """True if a listening address (``TIDINGS_HOST``) is only reachable from this machine."""
    if host.lower() == "localhost":
        return True
    try:
        return ipaddress.ip_address(host.strip("[]")).is_loopback
    except ValueError:
        return False


def host_allowed(host_header: str | None, public_url: str | None, loopback_bind: bool) -> bool:
    """True if a request whose ``Host`` header is ``host_header`` may be given what only this
    machine's users may have: on a loopback bind, a loopback name (any port) or the public
    URL's host name; on any other bind (dev mode asked for on the network), any."""
    if not loopback_bind:
        return True
    try:
        name = urlsplit("//" + (host_header or "").strip()).hostname
    except ValueError:
        return False
    if not name:
        return False
    if public_url is not None and (_parts(public_url) or ("", "", 0))[1] == name:
        return True
    return is_loopback(name)


def origin_allowed(origin: str, allowed: tuple[str, ...], public_url: str | None,
                   loopback_bind: bool) -> bool:
    """True if a browser page of ``origin`` may open a socket (see the module's rule)."""
    if "*" in allowed:
        return True
    mine = origin_of(origin)
    if mine is None:  # "null" (sandboxed frames, files) or not http(s)
        return origin in allowed
    if any(origin_of(a) == mine for a in allowed):
        return True
    if public_url is not None and origin_of(public_url) == mine:
        return True
    parts = _parts(origin)
    return loopback_bind and parts is not None and parts[1] in LOOPBACK_HOSTS
