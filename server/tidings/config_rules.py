"""The rules that settings must keep together, checked once at start.

What may live here: checks across settings that each parsed on their own
(:mod:`tidings.config` reads them). :func:`check` returns every problem found,
one :class:`~tidings.core.errors.ConfigError` per setting, in the order of the
settings table; it raises nothing and touches no file but a ``@path`` key's.
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

from .core.email_message import parse_sender
from .core.errors import ConfigError
from .core.smtp_url import parse_smtp_url
from .core.webpush import HostPolicy

if TYPE_CHECKING:
    from .config import Settings

MIN_HS256_SECRET = 32
MIN_ADMIN_KEY = 16  # an admin key opens the console: not guessable
HS_ALGS = {"HS256", "HS384", "HS512"}
ASYM_ALGS = {"RS256", "RS384", "RS512", "ES256", "ES384", "ES512", "PS256", "PS384", "PS512",
             "EdDSA"}
_URL_SCHEMES = {"TIDINGS_DATABASE_URL": ("postgres://", "postgresql://"),
                "TIDINGS_REDIS_URL": ("redis://", "rediss://", "unix://")}


def check(s: Settings, *, require_auth: bool) -> list[ConfigError]:
    """Every problem of ``s``; ``require_auth``: a server needs user and producer credentials."""
    found: dict[str, str] = {}

    def bad(setting: str, problem: str) -> None:
        found.setdefault(setting, problem)

    _auth(s, require_auth, bad)
    _algorithms(s, bad)
    for name, url in (("TIDINGS_DATABASE_URL", s.database_url),
                      ("TIDINGS_REDIS_URL", s.redis_url)):
        schemes = _URL_SCHEMES[name]
        if url is not None and not url.startswith(schemes):
            bad(name, f"must start with {' or '.join(schemes)}")
    if s.jwt_jwks_url and not s.jwt_jwks_url.startswith(("https://", "http://")):
        bad("TIDINGS_JWT_JWKS_URL", "must be an http(s) URL")
    if s.public_url and not s.public_url.startswith(("https://", "http://")):
        bad("TIDINGS_PUBLIC_URL", "must be an http(s) URL")
    _webpush(s, bad)
    _email(s, bad)
    if set(s.admin_keys) & set(s.api_keys):
        bad("TIDINGS_ADMIN_KEYS", "an admin key must not also be a producer key")
    _metrics_ports(s, bad)
    for origin in s.allowed_origins:
        if origin != "*" and not origin.startswith(("http://", "https://")):
            bad("TIDINGS_ALLOWED_ORIGINS", f"{origin!r} is not an http(s) origin")
    return [ConfigError(setting, problem) for setting, problem in found.items()]


def _auth(s: Settings, require_auth: bool, bad) -> None:
    jwt_sources = [n for n in ("jwt_secret", "jwt_public_key", "jwt_jwks_url") if getattr(s, n)]
    if len(jwt_sources) > 1:
        names = " and ".join("TIDINGS_" + n.upper() for n in jwt_sources)
        bad("TIDINGS_JWT_*", f"set only one of {names}")
    if require_auth and not jwt_sources and not s.embedded:
        bad("TIDINGS_JWT_SECRET", "user tokens need TIDINGS_JWT_SECRET, TIDINGS_JWT_PUBLIC_KEY"
            " or TIDINGS_JWT_JWKS_URL")
    if require_auth and not s.api_keys and not s.embedded:
        bad("TIDINGS_API_KEYS", "producers need at least one API key")
    if any(len(key) < MIN_ADMIN_KEY for key in s.admin_keys):
        bad("TIDINGS_ADMIN_KEYS", f"each admin key must be at least {MIN_ADMIN_KEY} characters")
    if s.jwt_secret and len(s.jwt_secret) < MIN_HS256_SECRET:
        bad("TIDINGS_JWT_SECRET", f"must be at least {MIN_HS256_SECRET} characters")
    if s.unsubscribe_secret and len(s.unsubscribe_secret) < MIN_HS256_SECRET:
        bad("TIDINGS_UNSUBSCRIBE_SECRET", f"must be at least {MIN_HS256_SECRET} characters")
    if s.jwt_public_key and s.jwt_public_key.startswith("@"):
        path = Path(s.jwt_public_key[1:])
        if not path.is_file():
            bad("TIDINGS_JWT_PUBLIC_KEY", f"no file {path}")


def _webpush(s: Settings, bad) -> None:
    if s.vapid_private_key and not s.vapid_subject:
        bad("TIDINGS_VAPID_SUBJECT", "Web Push needs a subject with the VAPID key:"
            " mailto:you@example.com or an https URL")
    if s.vapid_subject and not s.vapid_subject.startswith(("mailto:", "https://")):
        bad("TIDINGS_VAPID_SUBJECT", "must be a mailto: or https: URL")
    if s.vapid_private_key and s.vapid_private_key.startswith("@"):
        path = Path(s.vapid_private_key[1:])
        if not path.is_file():
            bad("TIDINGS_VAPID_PRIVATE_KEY", f"no file {path}")
    try:
        HostPolicy.parse(s.webpush_allowed_hosts)
    except ValueError as exc:
        bad("TIDINGS_WEBPUSH_ALLOWED_HOSTS", str(exc))


def _email(s: Settings, bad) -> None:
    # The URL may hold a password: problems name it, never quote it.
    if s.smtp_url:
        try:
            parse_smtp_url(s.smtp_url)
        except ValueError as exc:
            bad("TIDINGS_SMTP_URL", f"the URL {exc}")
        if not s.email_from:
            bad("TIDINGS_EMAIL_FROM", "e-mail through TIDINGS_SMTP_URL needs a sender address")
    if s.email_from:
        try:
            parse_sender(s.email_from)
        except ValueError as exc:
            bad("TIDINGS_EMAIL_FROM", f"{s.email_from!r} {exc}")


def _metrics_ports(s: Settings, bad) -> None:
    """With ``--workers N`` the processes serve metrics on PORT to PORT+N-1."""
    first = s.metrics_port
    if first is None:
        return
    last = first + s.workers - 1
    if s.workers > 1 and first == 0:
        bad("TIDINGS_METRICS_PORT", f"0 (any free port) cannot number {s.workers} processes")
    elif last > 65535:
        bad("TIDINGS_METRICS_PORT", f"{first} to {last} (one per process) must end by 65535")
    elif first <= s.port <= last and s.port != 0:
        ports = str(first) if first == last else f"{first} to {last} (one per process)"
        bad("TIDINGS_METRICS_PORT", f"{ports} must not include TIDINGS_PORT ({s.port})")


def _algorithms(s: Settings, bad) -> None:
    algs = set(s.allowed_algorithms())
    if "none" in {a.lower() for a in algs}:
        bad("TIDINGS_JWT_ALGORITHMS", "'none' is never allowed")
        return
    unknown = algs - HS_ALGS - ASYM_ALGS
    if unknown:
        bad("TIDINGS_JWT_ALGORITHMS", f"unknown algorithm(s) {', '.join(sorted(unknown))}")
    elif s.jwt_secret and algs - HS_ALGS:
        bad("TIDINGS_JWT_ALGORITHMS", "a secret only verifies HS256, HS384 or HS512")
    elif (s.jwt_public_key or s.jwt_jwks_url) and algs & HS_ALGS:
        bad("TIDINGS_JWT_ALGORITHMS", "public keys do not verify HS* algorithms")
