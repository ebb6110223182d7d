"""E-mail through an SMTP server (aiosmtplib), over a small pool of reused connections.

Contracts:

- At most ``connections`` sends run at once, each on a connection of its own;
  a connection that finished a send waits in the pool for the next one and is
  closed once it has been idle ``idle`` seconds (servers drop idle clients).
- A new connection: TCP (TLS at once for ``smtps://``), EHLO, STARTTLS as the
  URL's mode says (:mod:`tidings.core.smtp_url`), then AUTH with the URL's
  credentials (only over TLS, or to a loopback host). Certificates are
  verified against the system's trust store unless a ``tls_context`` is given.
- One message per transaction: ``MAIL FROM`` the sender, ``RCPT TO`` the one
  recipient, ``DATA`` the bytes of :func:`tidings.core.email_message.build_message`.
  Every command waits at most ``timeout`` seconds.
- Replies and failures map to outcomes by
  :func:`tidings.core.mail_outcomes.reply_outcome`; a connection that fails,
  drops or times out is a ``retry``. A pooled connection found dead before
  ``DATA`` (the server closed it meanwhile) is replaced by a fresh one for the
  same send; once ``DATA`` has begun, the send is not repeated here (the server
  may have taken it). After a refused transaction the connection is reset
  (``RSET``) and kept.
"""

from __future__ import annotations

import asyncio
import contextlib
import random
import socket
import ssl
import time

import aiosmtplib

from ..core.email_message import (
    BadAddress,
    Email,
    Sender,
    build_message,
    check_address,
    message_bytes,
)
from ..core.mail_outcomes import MailOutcome, reply_outcome, retry_delay
from ..core.smtp_url import SmtpTarget, Tls

SERVER_CLOSING = 421
QUIT_TIMEOUT = 2.0
_STAGE_NAMES = {"connect": "connecting", "ehlo": "EHLO", "starttls": "STARTTLS",
                "auth": "AUTH", "mail": "MAIL FROM", "rcpt": "RCPT TO", "data": "DATA"}


class SmtpMailer:
    name = "smtp"

    def __init__(self, target: SmtpTarget, sender: Sender, *, timeout: float = 30.0,
                 connections: int = 4, idle: float = 30.0,
                 tls_context: ssl.SSLContext | None = None,
                 local_hostname: str | None = None):
        self._target = target
        self._sender = sender
        self._timeout = timeout
        self._idle_for = idle
        self._tls_context = tls_context
        self._local_hostname = local_hostname
        self._slots = asyncio.Semaphore(connections)
        self._pool: list[tuple[aiosmtplib.SMTP, float]] = []  # idle clients, idle since
        self._closed = False

    async def send(self, email: Email) -> MailOutcome:
        after = retry_delay(email.attempt, random.random())
        try:
            msg = build_message(email, self._sender, time.time())
        except BadAddress as exc:
            return MailOutcome.bounce(f"the address {exc}")
        recipient = check_address(email.to)  # as build_message wrote it
        data = message_bytes(msg)
        async with self._slots:
            pooled = self._take()
            if pooled is not None:
                outcome = await self._transaction(pooled, recipient, data, after, pooled=True)
                if outcome is not None:
                    return outcome
            client = await self._open(recipient, after)
            if isinstance(client, MailOutcome):
                return client
            outcome = await self._transaction(client, recipient, data, after, pooled=False)
            assert outcome is not None
            return outcome

    async def close(self) -> None:
        self._closed = True
        idle, self._pool = self._pool, []
        await asyncio.gather(*(_quit(client) for client, _ in idle))

    # -- connections -----------------------------------------------------------------------

    def _take(self) -> aiosmtplib.SMTP | None:
        """The most recently idle pooled client still fresh enough; staler ones are closed."""
        now = time.monotonic()
        while self._pool:
            client, since = self._pool.pop()
            if client.is_connected and now - since < self._idle_for:
                return client
            client.close()
        return None

    def _release(self, client: aiosmtplib.SMTP) -> None:
        if self._closed or not client.is_connected:
            client.close()
        else:
            self._pool.append((client, time.monotonic()))

    async def _hostname(self) -> str:
        if self._local_hostname is None:
            self._local_hostname = await asyncio.to_thread(socket.getfqdn)
        return self._local_hostname

    async def _context(self) -> ssl.SSLContext:
        if self._tls_context is None:
            self._tls_context = await asyncio.to_thread(ssl.create_default_context)
        return self._tls_context

    async def _open(self, recipient: str, after: float) -> aiosmtplib.SMTP | MailOutcome:
        """A connected client, greeted, with TLS and logged in as the URL says; or the
        outcome that says why not."""
        t = self._target
        needs_tls = t.tls is not Tls.NEVER
        client = aiosmtplib.SMTP(
            hostname=t.host, port=t.port, use_tls=t.tls is Tls.IMPLICIT, start_tls=False,
            tls_context=await self._context() if needs_tls else None,
            timeout=self._timeout, local_hostname=await self._hostname())
        stage = "connect"
        try:
            await client.connect()
            stage = "ehlo"
            try:
                await client.ehlo()
            except aiosmtplib.SMTPHeloError:
                await client.helo()
            if t.tls in (Tls.REQUIRE, Tls.AUTO):
                stage = "starttls"
                if client.supports_extension("starttls"):
                    await client.starttls()
                elif t.tls is Tls.REQUIRE:
                    client.close()
                    return MailOutcome.retry(
                        after, "STARTTLS: the server does not offer it, and it is required"
                               " (port 587, credentials, or ?starttls=require)")
            if t.username:
                stage = "auth"
                await client.login(t.username, t.password or "")
        except aiosmtplib.SMTPResponseException as exc:
            client.close()
            return reply_outcome(stage, exc.code, exc.message, recipient=recipient, after=after)
        except (aiosmtplib.SMTPException, OSError) as exc:  # ssl.SSLError is an OSError
            client.close()
            return MailOutcome.retry(after, f"{_STAGE_NAMES[stage]}: {_describe(exc)}")
        except BaseException:  # cancelled: the half-open connection goes too
            client.close()
            raise
        return client

    async def _transaction(self, client: aiosmtplib.SMTP, recipient: str, data: bytes,
                           after: float, *, pooled: bool) -> MailOutcome | None:
        """One message on ``client``; None when a pooled client was dead before DATA."""
        stage = "mail"
        try:
            options = [f"SIZE={len(data)}"] if client.supports_extension("size") else []
            await client.mail(self._sender.address, options=options)
            stage = "rcpt"
            await client.rcpt(recipient)
            stage = "data"
            reply = await client.data(data)
        except aiosmtplib.SMTPResponseException as exc:
            if pooled and stage == "mail" and exc.code == SERVER_CLOSING:
                client.close()
                return None
            await self._reset(client)
            return reply_outcome(stage, exc.code, exc.message, recipient=recipient, after=after)
        except (aiosmtplib.SMTPException, OSError) as exc:
            client.close()
            if pooled and stage != "data":
                return None
            return MailOutcome.retry(after, f"{_STAGE_NAMES[stage]}: {_describe(exc)}")
        except BaseException:  # cancelled mid-transaction: the connection cannot be reused
            client.close()
            raise
        self._release(client)
        return MailOutcome.sent(f"{reply.code} {' '.join(reply.message.split())}")

    async def _reset(self, client: aiosmtplib.SMTP) -> None:
        """Ready ``client`` for the next message after a refused one, or drop it."""
        if not client.is_connected:
            return
        try:
            await client.rset()
        except (aiosmtplib.SMTPException, OSError):
            client.close()
            return
        self._release(client)


async def _quit(client: aiosmtplib.SMTP) -> None:
    with contextlib.suppress(aiosmtplib.SMTPException, OSError):
        await client.quit(timeout=QUIT_TIMEOUT)
    client.close()


def _describe(exc: BaseException) -> str:
    text = " ".join(str(exc).split())
    return f"{type(exc).__name__}: {text}" if text else type(exc).__name__
