"""The mailer of a node's settings: SMTP when ``TIDINGS_SMTP_URL`` is set, else the console.

The settings were checked at start (:mod:`tidings.config_rules`), so the URL
and the sender parse here. Without ``TIDINGS_EMAIL_FROM`` the console mailer
writes ``Tidings <tidings@localhost>`` as the sender.
"""

from __future__ import annotations

import ssl

from ..config import Settings
from ..core.email_message import Sender, parse_sender
from ..core.smtp_url import parse_smtp_url
from .base import Mailer
from .console import ConsoleMailer
from .smtp import SmtpMailer

CONSOLE_SENDER = Sender("tidings@localhost", "Tidings")


def mailer(settings: Settings, *, tls_context: ssl.SSLContext | None = None) -> Mailer:
    """A new mailer for ``settings``; ``tls_context`` replaces the system's trust store
    (a private CA). Close it when done."""
    if not settings.smtp_url:
        sender = parse_sender(settings.email_from) if settings.email_from else CONSOLE_SENDER
        return ConsoleMailer(sender)
    assert settings.email_from, "checked with the settings"
    return SmtpMailer(parse_smtp_url(settings.smtp_url), parse_sender(settings.email_from),
                      timeout=settings.smtp_timeout, connections=settings.smtp_connections,
                      tls_context=tls_context)
