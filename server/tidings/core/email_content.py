"""What an e-mail of the e-mail channel says: one notification, or a digest, rendered from
the type's e-mail templates; no I/O.

Contracts:

- One notification: the type's ``subject``, ``text`` and ``html`` templates
  (:mod:`tidings.core.templates`); a template that is absent, or fails on this
  notification, falls back to the notification's own text: subject its
  ``title`` (else the type's title), text its ``message``, no HTML part.
- A digest lists the notifications still unread (in seq order) in one e-mail:
  ``digest_subject``, ``digest_text`` and ``digest_html`` (they see ``count``,
  ``type``, ``type_title``, ``recipient`` and ``notifications``), falling back to
  "3 new comments" and one line per notification (``- title: message``).
- ``reference`` (the ``Message-ID``'s source) is the notification's uid, or the
  digest job's id: the same on every attempt.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from . import templates
from .email_message import Email
from .typedefs import EmailTemplates, TypeDefinition


@dataclass(frozen=True, slots=True)
class Recipient:
    """Where an e-mail goes: the profile's address and name, the preferences page and the
    one-click unsubscribe URL (of this user and type) for ``List-Unsubscribe``, and the
    attempt number of the job."""

    address: str
    name: str | None
    preferences_url: str | None
    attempt: int = 1
    unsubscribe_url: str | None = None


def _group(t: TypeDefinition) -> EmailTemplates:
    return t.templates.email or EmailTemplates()


def _email(to: Recipient, reference: str, subject: str, text: str, html: str | None) -> Email:
    return Email(to.address, subject, text, reference, html=html or None,
                 unsubscribe_url=to.unsubscribe_url, preferences_url=to.preferences_url,
                 to_name=to.name, attempt=to.attempt)


def notification_email(t: TypeDefinition, row: Mapping[str, Any], to: Recipient) -> Email:
    """The e-mail of one notification ``row`` (a stored row: ``uid``, ``message``, ...)."""
    g = _group(t)
    ctx = templates.notification_context(row, t.title)
    subject = templates.render(g.subject, ctx) or row.get("title") or t.title
    text = templates.render(g.text, ctx) or row["message"]
    return _email(to, str(row["uid"]), subject, text, templates.render(g.html, ctx))


def _line(row: Mapping[str, Any]) -> str:
    return f"- {row['title']}: {row['message']}" if row.get("title") else f"- {row['message']}"


def digest_email(t: TypeDefinition, type_name: str, rows: Sequence[Mapping[str, Any]],
                 to: Recipient, user_id: str, reference: str) -> Email:
    """One e-mail listing ``rows`` (two or more notifications still unread, in order)."""
    g = _group(t)
    ctx: dict[str, Any] = {
        "count": len(rows), "type": type_name, "type_title": t.title, "recipient": user_id,
        "notifications": [templates.notification_context(r, t.title) for r in rows]}
    subject = templates.render(g.digest_subject, ctx) or f"{len(rows)} new {t.title.lower()}"
    text = templates.render(g.digest_text, ctx) or "\n".join(_line(r) for r in rows)
    return _email(to, reference, subject, text, templates.render(g.digest_html, ctx))
