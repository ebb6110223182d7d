"""What became of one e-mail (:class:`MailOutcome`), how SMTP replies map to it, and when
to try again; no I/O.

The outcomes, for the sender's log and the recipient's profile:

- ``sent``: the server took the message.
- ``retry``: try again after ``after`` seconds (:func:`retry_delay` of the
  attempt): any 4xx reply, a connection that failed, timed out or dropped, a
  TLS handshake or STARTTLS that failed, credentials refused. The message is
  fine; the server or the settings are not, for now.
- ``bounce``: the address will not take mail: a 5xx to ``RCPT TO``, or a 5xx
  after ``DATA`` that names the address or carries an addressing status
  (``5.1.x``, ``5.2.x``), or an address that cannot be sent to at all.
  A 5xx to ``RCPT TO`` with a security status (``5.7.x``: relaying denied,
  authentication required) is the sending setup's fault, not the address's, so
  it is ``failed``.
- ``failed``: this message cannot go as it is: any other 5xx (the sender
  refused by ``MAIL FROM``, the content refused after ``DATA``).

The random number for the jitter is passed in.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from enum import StrEnum

from .push import backoff

RETRY_BASE = 60.0  # seconds before the first retry: greylisting asks for minutes
RETRY_CAP = 3600.0

_ADDRESSING = re.compile(r"\s*5\.[12]\.\d{1,3}\b")
_SECURITY = re.compile(r"\s*5\.7\.\d{1,3}\b")
_STAGES = {"connect": "greeting", "ehlo": "EHLO", "starttls": "STARTTLS", "auth": "AUTH",
           "mail": "MAIL FROM", "rcpt": "RCPT TO", "data": "DATA"}


class MailResult(StrEnum):
    SENT = "sent"
    RETRY = "retry"
    BOUNCE = "bounce"
    FAILED = "failed"


@dataclass(frozen=True, slots=True)
class MailOutcome:
    """One e-mail's outcome; ``after`` (seconds) is set for ``retry`` only."""

    result: MailResult
    detail: str = ""
    after: float | None = None

    @classmethod
    def sent(cls, detail: str = "") -> MailOutcome:
        return cls(MailResult.SENT, detail)

    @classmethod
    def retry(cls, after: float, detail: str) -> MailOutcome:
        return cls(MailResult.RETRY, detail, after)

    @classmethod
    def bounce(cls, detail: str) -> MailOutcome:
        return cls(MailResult.BOUNCE, detail)

    @classmethod
    def failed(cls, detail: str) -> MailOutcome:
        return cls(MailResult.FAILED, detail)


def retry_delay(attempt: int, rand: float) -> float:
    """Seconds before sending again after attempt number ``attempt`` (1 the first) failed:
    60 s doubling to a cap of an hour, with equal jitter (``rand`` in [0, 1))."""
    return backoff(max(1, attempt), rand, base=RETRY_BASE, cap=RETRY_CAP)


def reply_outcome(stage: str, code: int, text: str, *, recipient: str,
                  after: float) -> MailOutcome:
    """The outcome of an SMTP error reply ``code text`` to the command of ``stage``
    (``connect``, ``ehlo``, ``starttls``, ``auth``, ``mail``, ``rcpt``, ``data``).

    ``after`` is the retry delay used when the reply means "try again".
    """
    detail = f"{_STAGES.get(stage, stage)}: {code} {' '.join(text.split())}".strip()
    if code < 500 or stage in ("connect", "ehlo", "starttls", "auth"):
        return MailOutcome.retry(after, detail)
    if stage == "rcpt":
        if _SECURITY.match(text):
            return MailOutcome.failed(detail)
        return MailOutcome.bounce(detail)
    if stage == "data" and (_ADDRESSING.match(text) or recipient.lower() in text.lower()):
        return MailOutcome.bounce(detail)
    return MailOutcome.failed(detail)
