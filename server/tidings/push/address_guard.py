"""The resolver of Web Push sends: a host name connects only to addresses the policy allows.

An endpoint's host is a name a user chose, so the addresses it resolves to are
checked where the connection is made (not before, which a DNS answer that
changes between the check and the connect would get around). Addresses that
are not public and not listed in ``TIDINGS_WEBPUSH_ALLOWED_HOSTS`` are dropped;
when none is left the lookup fails with :class:`RefusedAddress`, which the
provider reports as a refused send. Address literals never reach a resolver:
:func:`tidings.core.webpush.check_endpoint` judges those.
"""

from __future__ import annotations

import ipaddress
import socket
from typing import Any

from aiohttp.abc import AbstractResolver, ResolveResult
from aiohttp.resolver import DefaultResolver

from ..core.webpush import HostPolicy


class RefusedAddress(OSError):
    """Every address of the host is private, loopback, link-local or otherwise not public."""


class GuardedResolver(AbstractResolver):
    def __init__(self, policy: HostPolicy, inner: AbstractResolver | None = None):
        self._policy = policy
        self._inner = inner or DefaultResolver()

    def _allowed(self, address: str) -> bool:
        try:
            return self._policy.address_allowed(ipaddress.ip_address(address))
        except ValueError:
            return False

    async def resolve(self, host: str, port: int = 0,
                      family: socket.AddressFamily = socket.AF_INET) -> list[ResolveResult]:
        found = await self._inner.resolve(host, port, family)
        allowed = [r for r in found if self._allowed(r["host"])]
        if not allowed:
            addresses = ", ".join(sorted({r["host"] for r in found})) or "nothing"
            raise RefusedAddress(f"{host} resolves to {addresses}: no public address, and"
                                 " TIDINGS_WEBPUSH_ALLOWED_HOSTS lists none of them")
        return allowed

    async def close(self) -> None:
        await self._inner.close()


def refused(exc: BaseException) -> RefusedAddress | None:
    """The RefusedAddress behind a client error (aiohttp wraps resolver errors), if any."""
    seen: Any = exc
    while seen is not None:
        if isinstance(seen, RefusedAddress):
            return seen
        seen = seen.__cause__ or getattr(seen, "os_error", None)
        if seen is exc:
            break
    return None
