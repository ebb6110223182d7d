"""The mailer contract: one e-mail to one recipient, answered with a :class:`MailOutcome`.

A mailer renders the message from the :class:`Email` itself
(:mod:`tidings.core.email_message`) and must not raise for anything the server
or the network does: every answer maps to an outcome
(:mod:`tidings.core.mail_outcomes`): ``sent``, ``retry`` after N seconds,
``bounce`` (the address will not take mail: mark it bouncing) or ``failed``
(this message cannot go). A bug may still raise; the caller treats that as a
retry. A retry's delay grows with ``Email.attempt``. A mailer is shared by
concurrent sends and bounds how many run at once itself. ``Email`` and
``MailOutcome`` are defined in ``core`` (pure rules use them) and are importable
from here with the protocol.
"""

from __future__ import annotations

from typing import Protocol

from ..core.email_message import Email
from ..core.mail_outcomes import MailOutcome, MailResult

__all__ = ["Email", "MailOutcome", "MailResult", "Mailer"]


class Mailer(Protocol):
    #: "smtp" or "console": the delivery log's channel.
    name: str

    async def send(self, email: Email) -> MailOutcome:
        """Send ``email`` once (at most one fresh connection after a pooled one turned out
        dead before the message went), never a sleep: retries are the caller's."""
        ...

    async def close(self) -> None:
        """Release connections; the mailer is not used afterwards."""
        ...
