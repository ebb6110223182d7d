"""Before serving: the port is free, PostgreSQL and Redis answer and take the login.

Each check raises :class:`~.common.Unusable` with one line naming the setting,
the address (never a password) and the reason. The port is checked first and
takes well under a second; PostgreSQL and Redis each get a few seconds.
"""

from __future__ import annotations

import asyncio
import errno
import socket
from urllib.parse import parse_qs, urlsplit

from .. import config
from ..config import Settings
from ..core.errors import BusUnavailable, StoreError, StoreUnavailable
from .common import Unusable

TIMEOUT = 8.0  # seconds for PostgreSQL or Redis to answer


def check_port(host: str, port: int, setting: str = "TIDINGS_PORT",
               host_setting: str = "TIDINGS_HOST") -> None:
    """Raise Unusable if ``host:port`` cannot be listened on (bound and released at once);
    the failure names ``setting`` (the port's) or ``host_setting``."""
    flag, host_flag = (config.flag(_field(setting)), config.flag(_field(host_setting)))
    try:
        infos = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM, flags=socket.AI_PASSIVE)
    except socket.gaierror as exc:
        raise Unusable(host_setting, f"cannot listen on {host!r} ({exc.strerror})") from None
    for family, kind, proto, _name, address in infos:
        with socket.socket(family, kind, proto) as s:
            s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
            try:
                s.bind(address)
            except OSError as exc:
                if exc.errno == errno.EADDRNOTAVAIL:
                    raise Unusable(host_setting, f"{host} is not an address of this machine"
                                   f" ({host_flag})") from None
                what = ("is already in use (another server listens there)"
                        if exc.errno == errno.EADDRINUSE else f"cannot be used ({exc.strerror})")
                raise Unusable(setting, f"port {port} on {host} {what}; choose another"
                               f" with {flag}") from None


def _field(setting: str) -> str:
    return setting.removeprefix("TIDINGS_").lower()


def address(url: str) -> str:
    """``host:port`` of a database or Redis URL (or its socket folder), without credentials."""
    parts = urlsplit(url)
    socket_dir = parse_qs(parts.query).get("host", [None])[0]
    if socket_dir and socket_dir.startswith("/"):
        return f"the socket in {socket_dir}"
    host = parts.hostname or "localhost"
    default = 5432 if parts.scheme.startswith("postgres") else 6379
    try:
        port = parts.port or default
    except ValueError:
        port = default
    return f"{host}:{port}"


def reason(exc: BaseException) -> str:
    """The cause of a driver failure, in a few words."""
    cause = exc.__cause__ or exc
    text = str(cause).strip().splitlines()[0] if str(cause).strip() else ""
    name = type(cause).__name__
    if isinstance(cause, ConnectionRefusedError) or "refused" in text.lower() or (
            "Connect call failed" in text):
        return "connection refused"
    if isinstance(cause, socket.gaierror) or "not known" in text or "nodename nor" in text:
        return "unknown host"
    if isinstance(cause, TimeoutError):
        return f"no answer within {TIMEOUT:g} s"
    if "Password" in name or "Authorization" in name or "Authentication" in name or (
            "AUTH" in text or "NOAUTH" in text or "WRONGPASS" in text):
        return f"login refused ({text or name})"
    if isinstance(cause, OSError) and cause.strerror:
        return cause.strerror.lower()
    return text or name


async def _database(url: str, migrate: bool) -> list[str]:
    from ..store import db, errors
    from ..store import migrate as migrations

    with errors.translated():
        pool = await asyncio.wait_for(db.create_pool(url, min_size=1, max_size=1), TIMEOUT)
        try:
            async with pool.acquire() as conn:
                return await migrations.apply(conn) if migrate else []
        finally:
            await pool.close()


def reach_database(settings: Settings, *, migrate: bool) -> list[str]:
    """Connect to PostgreSQL (and apply pending migrations if asked); names applied."""
    url = settings.database_url or ""
    try:
        return asyncio.run(_database(url, migrate))
    except (StoreUnavailable, StoreError, TimeoutError, OSError) as exc:
        raise Unusable("TIDINGS_DATABASE_URL",
                       f"cannot use PostgreSQL at {address(url)}: {reason(exc)}") from None


async def _redis(url: str) -> None:
    from ..bus import connect, errors

    client = connect.client(url)
    try:
        with errors.translated():
            await asyncio.wait_for(client.ping(), TIMEOUT)
    finally:
        await client.aclose()


def reach_redis(settings: Settings) -> None:
    """Raise Unusable unless Redis answers PING with the URL's login."""
    url = settings.redis_url or ""
    try:
        asyncio.run(_redis(url))
    except (BusUnavailable, TimeoutError) as exc:
        raise Unusable("TIDINGS_REDIS_URL",
                       f"cannot use Redis at {address(url)}: {reason(exc)}") from None
