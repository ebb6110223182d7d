"""Settings: one table of every option, read from ``TIDINGS_*`` variables and flags.

Each field of :class:`Settings` names its environment variable, its
``tidings serve`` flag, its kind (:mod:`tidings.config_values`), its default and
its help (:mod:`tidings.config_help` shows them). :func:`load` reads them once at start and
checks them together (:mod:`tidings.config_rules`): every bad value is a
:class:`~tidings.core.errors.ConfigError` naming the setting, all raised at
once, and the CLI prints one line for each and exits.
"""

from __future__ import annotations

import ipaddress
import os
from collections.abc import Mapping
from dataclasses import dataclass, field, fields, replace
from pathlib import Path
from typing import Any

from . import config_rules
from .config_values import (
    BOOL,
    COUNT,
    LIST,
    LOG_FORMATS,
    LOG_LEVELS,
    SECONDS,
    TEXT,
    URL,
    Kind,
    read_leeway,
    read_level,
    read_list,
    read_log_format,
    read_port,
    read_rate,
)
from .core.errors import ConfigError
from .core.webpush import KNOWN_HOSTS


def _opt(env: str, default: Any, kind: Kind = TEXT, help: str = "", **kw: Any):
    # Secrets stay out of repr(), so a logged Settings never shows them.
    return field(default=default, repr=not kw.get("secret"),
                 metadata={"env": env, "kind": kind, "help": help, **kw})


@dataclass(frozen=True)
class Settings:
    """Every setting of a Tidings node. Build it with :func:`load`."""

    database_url: str | None = _opt(
        "TIDINGS_DATABASE_URL", None, URL,
        help="PostgreSQL URL (also DATABASE_URL); unset: embedded",
        alias="DATABASE_URL")
    redis_url: str | None = _opt(
        "TIDINGS_REDIS_URL", None, URL, help="Redis URL (also REDIS_URL); unset: embedded",
        alias="REDIS_URL")
    data_dir: Path = _opt(
        "TIDINGS_DATA_DIR", Path(".tidings"), Kind(Path, "DIR"),
        help="folder for embedded servers' data and the dev secret")
    host: str = _opt("TIDINGS_HOST", "127.0.0.1", Kind(str, "HOST"), help="address to listen on")
    port: int = _opt("TIDINGS_PORT", 8000, Kind(read_port, "PORT"), help="port to listen on")
    workers: int = _opt(
        "TIDINGS_WORKERS", 1, COUNT, help="server processes sharing the port")
    migrate: bool = _opt(
        "TIDINGS_MIGRATE", True, BOOL, help="apply pending migrations when serving")
    jwt_secret: str | None = _opt(
        "TIDINGS_JWT_SECRET", None, Kind(str, "SECRET"),
        help="HS256 secret for user tokens (32+ characters)",
        secret=True)
    jwt_public_key: str | None = _opt(
        "TIDINGS_JWT_PUBLIC_KEY", None, Kind(str, "PEM|@PATH"),
        help="PEM public key (or @path to one) for RS256/ES256 user tokens")
    jwt_jwks_url: str | None = _opt(
        "TIDINGS_JWT_JWKS_URL", None, URL, help="JWKS URL for user tokens (RS256/ES256)")
    jwt_algorithms: tuple[str, ...] = _opt(
        "TIDINGS_JWT_ALGORITHMS", (), LIST,
        help="allowed JWT algorithms; default HS256 with a secret, RS256,ES256 with keys")
    jwt_audience: str | None = _opt("TIDINGS_JWT_AUDIENCE", None, help="required `aud` claim")
    jwt_issuer: str | None = _opt("TIDINGS_JWT_ISSUER", None, help="required `iss` claim")
    jwt_leeway: float = _opt(
        "TIDINGS_JWT_LEEWAY", 10.0, Kind(read_leeway, "SECONDS"),
        help="seconds of clock skew allowed on exp/nbf")
    api_keys: tuple[str, ...] = _opt(
        "TIDINGS_API_KEYS", (), Kind(read_list, "KEY,KEY"),
        help="producer API keys, comma-separated", secret=True)
    admin_keys: tuple[str, ...] = _opt(
        "TIDINGS_ADMIN_KEYS", (), Kind(read_list, "KEY,KEY"),
        help="admin keys for the operator's console (/admin, /api/v1/admin/...) and /metrics,"
             " comma-separated, separate from the producer keys; none: the console is off",
        secret=True)
    allowed_origins: tuple[str, ...] = _opt(
        "TIDINGS_ALLOWED_ORIGINS", (), LIST,
        help="browser origins allowed to open sockets and call the API (CORS); `*`: any")
    public_url: str | None = _opt(
        "TIDINGS_PUBLIC_URL", None, URL,
        help="URL browsers reach this server at (origin of sockets)")
    unsubscribe_secret: str | None = _opt(
        "TIDINGS_UNSUBSCRIBE_SECRET", None, Kind(str, "SECRET"),
        help="secret (32+ characters) signing e-mails' one-click unsubscribe links; default"
             " derived from TIDINGS_JWT_SECRET; neither: no one-click links", secret=True)
    dev: bool | None = _opt(
        "TIDINGS_DEV", None, BOOL,
        help="dev mode (anyone reaching the port gets user tokens for the demo page); default"
             " on when embedded on a loopback address, else off")
    node_id: str | None = _opt(
        "TIDINGS_NODE_ID", None, Kind(str, "ID"),
        help="this node's id in presence; default random per process")
    max_sockets_per_user: int = _opt(
        "TIDINGS_MAX_SOCKETS_PER_USER", 20, COUNT, help="open sockets per user per node")
    ws_auth_timeout: float = _opt(
        "TIDINGS_WS_AUTH_TIMEOUT", 5.0, SECONDS, help="seconds to send the auth message")
    ws_max_frame: int = _opt(
        "TIDINGS_WS_MAX_FRAME", 64 * 1024, COUNT, help="largest incoming frame (bytes)")
    ws_send_queue: int = _opt(
        "TIDINGS_WS_SEND_QUEUE", 256, COUNT,
        help="messages queued per socket before it is closed as slow (1008)")
    ws_heartbeat: float = _opt(
        "TIDINGS_WS_HEARTBEAT", 30.0, SECONDS, help="seconds between protocol pings")
    rate_limit_user: float = _opt(
        "TIDINGS_RATE_LIMIT_USER", 20.0, Kind(read_rate, "PER_SECOND"),
        help="HTTP requests per second per user, per node (bursts of 5x); 0 turns it off")
    rate_limit_producer: float = _opt(
        "TIDINGS_RATE_LIMIT_PRODUCER", 0.0, Kind(read_rate, "PER_SECOND"),
        help="publish requests per second per API key, per node (bursts of 2x); 0: off")
    replay_limit: int = _opt(
        "TIDINGS_REPLAY_LIMIT", 1000, COUNT,
        help="most notifications replayed on reconnect; more gets a reset")
    push_config: str | None = _opt(
        "TIDINGS_PUSH_CONFIG", None, Kind(str, "JSON|@PATH"),
        help="JSON (or @path) listing push apps: APNs / FCM credentials, Web Push")
    types: str | None = _opt(
        "TIDINGS_TYPES", None, Kind(str, "JSON|@PATH"),
        help="JSON (or @path) of notification types by name, created or replaced at start")
    push_workers: bool = _opt(
        "TIDINGS_PUSH_WORKERS", True, BOOL, help="run push workers inside `tidings serve`")
    push_max_attempts: int = _opt(
        "TIDINGS_PUSH_MAX_ATTEMPTS", 6, COUNT,
        help="sends of one push job before it is kept as a dead letter")
    push_device_per_minute: int = _opt(
        "TIDINGS_PUSH_DEVICE_PER_MINUTE", 10, COUNT,
        help="pushes to one device per minute; more are dropped as throttled")
    push_lease: float = _opt(
        "TIDINGS_PUSH_LEASE", 10.0, SECONDS,
        help="seconds a push worker holds a job unrenewed: a dead worker's jobs are"
             " taken over after this")
    push_backoff_base: float = _opt(
        "TIDINGS_PUSH_BACKOFF_BASE", 5.0, SECONDS, help="first retry delay of a push (seconds)")
    push_backoff_cap: float = _opt(
        "TIDINGS_PUSH_BACKOFF_CAP", 3600.0, SECONDS, help="longest retry delay (seconds)")
    vapid_private_key: str | None = _opt(
        "TIDINGS_VAPID_PRIVATE_KEY", None, Kind(str, "KEY|@PATH"),
        help="Web Push (VAPID) private key as `tidings vapid` prints it, or PEM, or @path to"
             " either", secret=True)
    vapid_subject: str | None = _opt(
        "TIDINGS_VAPID_SUBJECT", None, Kind(str, "mailto:|https:"),
        help="who push services may contact about this server's Web Push: mailto:you@example.com"
             " or an https URL")
    webpush_allowed_hosts: tuple[str, ...] = _opt(
        "TIDINGS_WEBPUSH_ALLOWED_HOSTS", KNOWN_HOSTS, LIST,
        help="the only hosts Web Push endpoints may name (a name, `*.domain` or `*`); private"
             " or loopback addresses only when listed (`127.0.0.1`, `::1`, `10.0.0.0/8`)")
    smtp_url: str | None = _opt(
        "TIDINGS_SMTP_URL", None, URL,
        help="SMTP server for e-mail: smtp://user:password@host:587 (STARTTLS),"
             " smtps://user:password@host (TLS), smtp://host:25 (a local relay; STARTTLS when"
             " offered); ?starttls=require or ?starttls=never; unset: e-mail is printed to the"
             " console",
        secret=True)
    email_from: str | None = _opt(
        "TIDINGS_EMAIL_FROM", None, Kind(str, "ADDRESS"),
        help="sender of e-mail, `Name <address>` or `address`; needed with TIDINGS_SMTP_URL")
    publish_commits: int | None = _opt(
        "TIDINGS_PUBLISH_COMMITS", None, COUNT,
        help="publish statements in flight at once per process (publishes sharing a"
             " recipient still commit in turn); unset: 2 (at most the database pool)")
    smtp_timeout: float = _opt(
        "TIDINGS_SMTP_TIMEOUT", 30.0, SECONDS,
        help="seconds the SMTP server gets to connect and to answer each command")
    smtp_connections: int = _opt(
        "TIDINGS_SMTP_CONNECTIONS", 4, COUNT,
        help="SMTP connections kept per process: e-mails sent at once")
    metrics: bool = _opt(
        "TIDINGS_METRICS", True, BOOL,
        help="record Prometheus metrics and serve /metrics; false turns both off")
    metrics_port: int | None = _opt(
        "TIDINGS_METRICS_PORT", None, Kind(read_port, "PORT"),
        help="also serve /metrics here, without a key (with --workers N: PORT to PORT+N-1,"
             " one per process)")
    metrics_host: str = _opt(
        "TIDINGS_METRICS_HOST", "127.0.0.1", Kind(str, "HOST"),
        help="address the metrics port listens on")
    log_level: str = _opt("TIDINGS_LOG_LEVEL", "INFO", Kind(read_level, "LEVEL", LOG_LEVELS),
                          help="log level")
    log_format: str = _opt("TIDINGS_LOG_FORMAT", "text",
                           Kind(read_log_format, "FORMAT", LOG_FORMATS),
                           help="log lines as text, or one JSON object per line")

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
    def unsubscribe_key(self) -> str | None:
        """The secret one-click unsubscribe links are signed with; None: e-mails get none."""
        return self.unsubscribe_secret or self.jwt_secret

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


class ConfigErrors(ConfigError):
    """Several bad settings at once; ``problems`` holds one ConfigError per setting."""

    def __init__(self, problems: list[ConfigError]):
        super().__init__(problems[0].setting, str(problems[0]).split(": ", 1)[1])
        self.problems = problems

    def __str__(self) -> str:
        return "\n".join(str(p) for p in self.problems)


def load(env: Mapping[str, str] | None = None, flags: Mapping[str, Any] | None = None,
         *, require_auth: bool = True) -> Settings:
    """Read settings from flags, then ``env``, then defaults, and check them all.

    Raises :class:`ConfigError` for one bad setting and :class:`ConfigErrors`
    (a ConfigError too) naming every bad setting when there are several.
    """
    env = os.environ if env is None else env
    flags = flags or {}
    values: dict[str, Any] = {}
    problems: list[ConfigError] = []
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
            values[f.name] = meta["kind"].parse(raw)
        except ValueError as exc:
            problems.append(ConfigError(source, f"{_quoted(raw)} {exc}"))
    settings = Settings(**values)
    failed = {p.setting for p in problems} | {
        f.metadata["env"] for f in options() if flag(f.name) in {p.setting for p in problems}}
    problems += [p for p in config_rules.check(settings, require_auth=require_auth)
                 if p.setting not in failed]
    if len(problems) == 1:
        raise problems[0]
    if problems:
        raise ConfigErrors(problems)
    return settings


def _quoted(raw: str) -> str:
    shown = raw if len(raw) <= 40 else raw[:37] + "..."
    return repr(shown) + ":"


def with_dev_auth(s: Settings, jwt_secret: str, api_key: str) -> Settings:
    """Settings with the embedded dev secret and API key filled in where none was set."""
    changes: dict[str, Any] = {}
    if not (s.jwt_secret or s.jwt_public_key or s.jwt_jwks_url):
        changes["jwt_secret"] = jwt_secret
    if not s.api_keys:
        changes["api_keys"] = (api_key,)
    return replace(s, **changes)
