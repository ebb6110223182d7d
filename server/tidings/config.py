"""Settings: one table of every option, read from ``TIDINGS_*`` variables and flags.

Each :class:`Option` names its environment variable, its ``tidings serve``
flag, its type and its default. :func:`load` reads them once at start and
checks them together: a bad value raises :class:`~tidings.core.errors.ConfigError`
naming the setting, and the CLI prints that one line and exits.
"""

from __future__ import annotations

import argparse
import ipaddress
import os
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field, fields, replace
from pathlib import Path
from typing import Any

from .core.errors import ConfigError

MIN_HS256_SECRET = 32


def _bool(text: str) -> bool:
    low = text.strip().lower()
    if low in ("1", "true", "yes", "on"):
        return True
    if low in ("0", "false", "no", "off", ""):
        return False
    raise ValueError(f"expected true or false, got {text!r}")


def _list(text: str) -> tuple[str, ...]:
    return tuple(part.strip() for part in text.split(",") if part.strip())


def _positive_int(text: str) -> int:
    value = int(text)
    if value < 1:
        raise ValueError("must be 1 or more")
    return value


def _port(text: str) -> int:
    value = int(text)
    if not 0 <= value <= 65535:
        raise ValueError("must be a port number from 0 to 65535")
    return value


def _seconds(text: str) -> float:
    value = float(text)
    if value <= 0:
        raise ValueError("must be a positive number of seconds")
    return value


def _opt(env: str, default: Any, parse: Callable[[str], Any] = str, help: str = "", **kw: Any):
    # Secrets stay out of repr(), so a logged Settings never shows them.
    return field(default=default, repr=not kw.get("secret"),
                 metadata={"env": env, "parse": parse, "help": help, **kw})


@dataclass(frozen=True)
class Settings:
    """Every setting of a Tidings node. Build it with :func:`load`."""

    database_url: str | None = _opt(
        "TIDINGS_DATABASE_URL", None, help="PostgreSQL URL (also DATABASE_URL); unset: embedded",
        alias="DATABASE_URL")
    redis_url: str | None = _opt(
        "TIDINGS_REDIS_URL", None, help="Redis URL (also REDIS_URL); unset: embedded",
        alias="REDIS_URL")
    data_dir: Path = _opt(
        "TIDINGS_DATA_DIR", Path(".tidings"), Path,
        help="folder for embedded servers' data and the dev secret")
    host: str = _opt("TIDINGS_HOST", "127.0.0.1", help="address to listen on")
    port: int = _opt("TIDINGS_PORT", 8000, _port, help="port to listen on")
    workers: int = _opt(
        "TIDINGS_WORKERS", 1, _positive_int, help="server processes sharing the port")
    migrate: bool = _opt(
        "TIDINGS_MIGRATE", True, _bool, help="apply pending migrations when serving")
    jwt_secret: str | None = _opt(
        "TIDINGS_JWT_SECRET", None, help="HS256 secret for user tokens (32+ characters)",
        secret=True)
    jwt_public_key: str | None = _opt(
        "TIDINGS_JWT_PUBLIC_KEY", None,
        help="PEM public key (or @path to one) for RS256/ES256 user tokens")
    jwt_jwks_url: str | None = _opt(
        "TIDINGS_JWT_JWKS_URL", None, help="JWKS URL for user tokens (RS256/ES256)")
    jwt_algorithms: tuple[str, ...] = _opt(
        "TIDINGS_JWT_ALGORITHMS", (), _list,
        help="allowed JWT algorithms; default HS256 with a secret, RS256,ES256 with keys")
    jwt_audience: str | None = _opt("TIDINGS_JWT_AUDIENCE", None, help="required `aud` claim")
    jwt_issuer: str | None = _opt("TIDINGS_JWT_ISSUER", None, help="required `iss` claim")
    jwt_leeway: float = _opt(
        "TIDINGS_JWT_LEEWAY", 10.0, float, help="seconds of clock skew allowed on exp/nbf")
    api_keys: tuple[str, ...] = _opt(
        "TIDINGS_API_KEYS", (), _list, help="producer API keys, comma-separated", secret=True)
    allowed_origins: tuple[str, ...] = _opt(
        "TIDINGS_ALLOWED_ORIGINS", (), _list,
        help="browser origins allowed to open sockets and call the API (CORS); `*`: any")
    public_url: str | None = _opt(
        "TIDINGS_PUBLIC_URL", None, help="URL browsers reach this server at (origin of sockets)")
    dev: bool | None = _opt(
        "TIDINGS_DEV", None, _bool,
        help="dev mode (anyone reaching the port gets user tokens for the demo page); default"
             " on when embedded on a loopback address, else off")
    node_id: str | None = _opt(
        "TIDINGS_NODE_ID", None, help="this node's id in presence; default random per process")
    max_sockets_per_user: int = _opt(
        "TIDINGS_MAX_SOCKETS_PER_USER", 20, _positive_int, help="open sockets per user per node")
    ws_auth_timeout: float = _opt(
        "TIDINGS_WS_AUTH_TIMEOUT", 5.0, _seconds, help="seconds to send the auth message")
    ws_max_frame: int = _opt(
        "TIDINGS_WS_MAX_FRAME", 64 * 1024, _positive_int, help="largest incoming frame (bytes)")
    ws_send_queue: int = _opt(
        "TIDINGS_WS_SEND_QUEUE", 256, _positive_int,
        help="messages queued per socket before it is closed as slow (1008)")
    ws_heartbeat: float = _opt(
        "TIDINGS_WS_HEARTBEAT", 30.0, _seconds, help="seconds between protocol pings")
    rate_limit_user: float = _opt(
        "TIDINGS_RATE_LIMIT_USER", 20.0, float,
        help="HTTP requests per second per user, per node (bursts of 5x); 0 turns it off")
    rate_limit_producer: float = _opt(
        "TIDINGS_RATE_LIMIT_PRODUCER", 0.0, float,
        help="publish requests per second per API key, per node (bursts of 2x); 0: off")
    replay_limit: int = _opt(
        "TIDINGS_REPLAY_LIMIT", 1000, _positive_int,
        help="most notifications replayed on reconnect; more gets a reset")
    push_config: str | None = _opt(
        "TIDINGS_PUSH_CONFIG", None,
        help="JSON (or @path) listing push apps: APNs / FCM credentials")
    push_workers: bool = _opt(
        "TIDINGS_PUSH_WORKERS", True, _bool, help="run push workers inside `tidings serve`")
    push_max_attempts: int = _opt(
        "TIDINGS_PUSH_MAX_ATTEMPTS", 6, _positive_int,
        help="sends of one push job before it is kept as a dead letter")
    push_device_per_minute: int = _opt(
        "TIDINGS_PUSH_DEVICE_PER_MINUTE", 10, _positive_int,
        help="pushes to one device per minute; more are dropped as throttled")
    push_lease: float = _opt(
        "TIDINGS_PUSH_LEASE", 10.0, _seconds,
        help="seconds a push worker holds a job unrenewed: a dead worker's jobs are"
             " taken over after this")
    push_backoff_base: float = _opt(
        "TIDINGS_PUSH_BACKOFF_BASE", 5.0, _seconds, help="first retry delay of a push (seconds)")
    push_backoff_cap: float = _opt(
        "TIDINGS_PUSH_BACKOFF_CAP", 3600.0, _seconds, help="longest retry delay (seconds)")
    log_level: str = _opt("TIDINGS_LOG_LEVEL", "INFO", str.upper, help="log level")

    @property
    def embedded_postgres(self) -> bool:
        return self.database_url is None

    @property
    def embedded_redis(self) -> bool:
        return self.redis_url is None

    @property
    def embedded(self) -> bool:
        return self.embedded_postgres or self.embedded_redis

    @property
    def dev_mode(self) -> bool:
        """Dev tokens for anyone: asked for explicitly, or embedded and reachable only locally."""
        if self.dev is not None:
            return self.dev
        return self.embedded and is_loopback(self.host)

    @property
    def jwt_mode(self) -> str:
        if self.jwt_secret:
            return "secret"
        if self.jwt_public_key:
            return "public_key"
        return "jwks"

    def allowed_algorithms(self) -> tuple[str, ...]:
        if self.jwt_algorithms:
            return self.jwt_algorithms
        return ("HS256",) if self.jwt_secret else ("RS256", "ES256")


def is_loopback(host: str) -> bool:
    """Whether listening on ``host`` is reachable from this machine only."""
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host.strip("[]")).is_loopback
    except ValueError:
        return False


def options() -> list[Any]:
    """The dataclass fields of Settings, each with its metadata."""
    return [f for f in fields(Settings) if "env" in f.metadata]


def flag(name: str) -> str:
    return "--" + name.replace("_", "-")


def add_flags(parser: argparse.ArgumentParser, names: list[str] | None = None) -> None:
    """Add a ``--flag`` for every setting (or those in ``names``); unset flags stay None."""
    for f in options():
        if names is not None and f.name not in names:
            continue
        meta = f.metadata
        parser.add_argument(flag(f.name), dest=f.name, default=None, metavar="VALUE",
                            help=f"{meta['help']} [{meta['env']}]")


def to_env(s: Settings) -> dict[str, str]:
    """The ``TIDINGS_*`` variables that reproduce ``s`` (unset options are left out)."""
    env: dict[str, str] = {}
    for f in options():
        value = getattr(s, f.name)
        if value is None:
            continue
        if isinstance(value, bool):
            text = "true" if value else "false"
        elif isinstance(value, tuple):
            text = ",".join(value)
        else:
            text = str(value)
        env[f.metadata["env"]] = text
    return env


_HS_ALGS = {"HS256", "HS384", "HS512"}
_ASYM_ALGS = {"RS256", "RS384", "RS512", "ES256", "ES384", "ES512", "PS256", "PS384", "PS512",
              "EdDSA"}


def load(env: Mapping[str, str] | None = None, flags: Mapping[str, Any] | None = None,
         *, require_auth: bool = True) -> Settings:
    """Read settings from flags, then ``env``, then defaults; check them; raise ConfigError."""
    env = os.environ if env is None else env
    flags = flags or {}
    values: dict[str, Any] = {}
    for f in options():
        meta = f.metadata
        raw = flags.get(f.name)
        source = flag(f.name)
        if raw is None:
            for name in (meta["env"], meta.get("alias")):
                if name and env.get(name) not in (None, ""):
                    raw, source = env[name], name
                    break
        if raw is None:
            continue
        if not isinstance(raw, str):
            values[f.name] = raw
            continue
        try:
            values[f.name] = meta["parse"](raw)
        except ValueError as exc:
            raise ConfigError(source, f"invalid value ({exc})") from None
    settings = Settings(**values)
    _check(settings, require_auth=require_auth)
    return settings


def _check(s: Settings, *, require_auth: bool) -> None:
    jwt_sources = [n for n in ("jwt_secret", "jwt_public_key", "jwt_jwks_url") if getattr(s, n)]
    if len(jwt_sources) > 1:
        names = " and ".join("TIDINGS_" + n.upper() for n in jwt_sources)
        raise ConfigError("TIDINGS_JWT_*", f"set only one of {names}")
    if require_auth and not jwt_sources and not s.embedded:
        raise ConfigError(
            "TIDINGS_JWT_SECRET",
            "user tokens need TIDINGS_JWT_SECRET, TIDINGS_JWT_PUBLIC_KEY or TIDINGS_JWT_JWKS_URL")
    if require_auth and not s.api_keys and not s.embedded:
        raise ConfigError("TIDINGS_API_KEYS", "producers need at least one API key")
    if s.jwt_secret and len(s.jwt_secret) < MIN_HS256_SECRET:
        raise ConfigError("TIDINGS_JWT_SECRET", f"must be at least {MIN_HS256_SECRET} characters")
    algs = set(s.allowed_algorithms())
    if "none" in {a.lower() for a in algs}:
        raise ConfigError("TIDINGS_JWT_ALGORITHMS", "'none' is never allowed")
    unknown = algs - _HS_ALGS - _ASYM_ALGS
    if unknown:
        raise ConfigError("TIDINGS_JWT_ALGORITHMS", f"unknown algorithm(s) {sorted(unknown)}")
    if s.jwt_secret and algs - _HS_ALGS:
        raise ConfigError("TIDINGS_JWT_ALGORITHMS", "a secret only verifies HS256/HS384/HS512")
    if (s.jwt_public_key or s.jwt_jwks_url) and algs & _HS_ALGS:
        raise ConfigError("TIDINGS_JWT_ALGORITHMS", "public keys do not verify HS* algorithms")
    if s.jwt_public_key and s.jwt_public_key.startswith("@"):
        path = Path(s.jwt_public_key[1:])
        if not path.is_file():
            raise ConfigError("TIDINGS_JWT_PUBLIC_KEY", f"no file {path}")
    if s.jwt_jwks_url and not s.jwt_jwks_url.startswith(("https://", "http://")):
        raise ConfigError("TIDINGS_JWT_JWKS_URL", "must be an http(s) URL")
    for name, url, schemes in (("TIDINGS_DATABASE_URL", s.database_url, ("postgres://",
                                                                          "postgresql://")),
                               ("TIDINGS_REDIS_URL", s.redis_url, ("redis://", "rediss://",
                                                                   "unix://"))):
        if url is not None and not url.startswith(schemes):
            raise ConfigError(name, f"must start with {' or '.join(schemes)}")
    for origin in s.allowed_origins:
        if origin != "*" and not origin.startswith(("http://", "https://")):
            raise ConfigError("TIDINGS_ALLOWED_ORIGINS", f"{origin!r} is not an http(s) origin")
    for name, rate in (("TIDINGS_RATE_LIMIT_USER", s.rate_limit_user),
                       ("TIDINGS_RATE_LIMIT_PRODUCER", s.rate_limit_producer)):
        if rate < 0:
            raise ConfigError(name, "must be 0 (off) or a positive rate")
    if s.log_level not in ("DEBUG", "INFO", "WARNING", "ERROR"):
        raise ConfigError("TIDINGS_LOG_LEVEL", "must be DEBUG, INFO, WARNING or ERROR")


def with_dev_auth(s: Settings, jwt_secret: str, api_key: str) -> Settings:
    """Settings with the embedded dev secret and API key filled in where none was set."""
    changes: dict[str, Any] = {}
    if not (s.jwt_secret or s.jwt_public_key or s.jwt_jwks_url):
        changes["jwt_secret"] = jwt_secret
    if not s.api_keys:
        changes["api_keys"] = (api_key,)
    return replace(s, **changes)
