"""The console mailer, for development: prints each e-mail as one JSON line.

It renders the message as the SMTP mailer would (an address that cannot be
sent to is a ``bounce`` here too) and prints its headers and bodies.
"""

from __future__ import annotations

import sys
import time
from typing import TextIO

from ..core.email_message import BadAddress, Email, Sender, console_text
from ..core.mail_outcomes import MailOutcome


class ConsoleMailer:
    name = "console"

    def __init__(self, sender: Sender, out: TextIO | None = None):
        self._sender = sender
        self._out = out

    async def send(self, email: Email) -> MailOutcome:
        try:
            line = console_text(email, self._sender, time.time())
        except BadAddress as exc:
            return MailOutcome.bounce(f"the address {exc}")
        print(line, file=self._out or sys.stdout, flush=True)
        return MailOutcome.sent()

    async def close(self) -> None:
        return None
