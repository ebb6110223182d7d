"""What every command shares: reading settings, logging, and the one-line failure.

:class:`Unusable` is a failure the user can act on (a server that cannot be
reached, a login refused, a port in use, a data folder held by another
process): the command prints it as one line and exits with status 2.
"""

from __future__ import annotations

import argparse
import logging
from dataclasses import replace
from urllib.parse import unquote, urlsplit

from .. import config, devauth, logsafe
from ..config import Settings


class Unusable(Exception):
    """Something the command needs cannot be used; ``setting`` names what to change."""

    def __init__(self, setting: str, problem: str):
        super().__init__(f"{setting}: {problem}")
        self.setting = setting


class _QuietSubprotocols(logging.Filter):
    """Drop aiohttp's warning for a socket offering a subprotocol that is not a token."""

    def filter(self, record: logging.LogRecord) -> bool:
        return "Client protocols" not in str(record.msg)


def setup_logging(settings: Settings) -> None:
    """Every log line escaped and free of credentials (see :mod:`tidings.logsafe`)."""
    logsafe.configure(settings.log_level, settings.log_format)
    logging.getLogger("aiohttp.websocket").addFilter(_QuietSubprotocols())
    protect(settings)


def protect(settings: Settings) -> None:
    smtp_password = urlsplit(settings.smtp_url).password if settings.smtp_url else None
    logsafe.protect([settings.jwt_secret, *settings.api_keys, *settings.admin_keys, smtp_password,
                     unquote(smtp_password or "")])


def settings(args: argparse.Namespace, *, require_auth: bool = True) -> Settings:
    """Flags over ``TIDINGS_*`` variables over defaults; raises ConfigError(s)."""
    flags = {f.name: getattr(args, f.name, None) for f in config.options()}
    return config.load(flags=flags, require_auth=require_auth)


def resolve(settings: Settings, database_url: str | None = None, redis_url: str | None = None,
            *, create: bool = True) -> Settings:
    """Settings with the embedded servers' URLs and, on an embedded folder, the dev credentials.

    ``create``: make the folder's dev credentials if it has none; otherwise a
    folder without them is left as it is (nothing is written).
    """
    embedded = settings.embedded
    settings = replace(settings, dev=settings.dev_mode,
                       database_url=settings.database_url or database_url,
                       redis_url=settings.redis_url or redis_url)
    if embedded:
        creds = (devauth.load_or_create(settings.data_dir) if create
                 else devauth.load(settings.data_dir))
        if creds is not None:
            settings = config.with_dev_auth(settings, *creds)
    return settings
