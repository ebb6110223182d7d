"""A real SMTP server for tests (aiosmtpd, in its own thread) that records what it took.

:class:`FakeSMTP` listens on a free loopback port: plain, offering STARTTLS
(``tls`` given), or TLS from the first byte (``implicit_tls``); with ``users`` it
offers AUTH (only over TLS, as aiosmtpd insists by default) and refuses mail
from clients that did not log in. Per recipient it can be told what to answer
to ``RCPT TO`` or after ``DATA`` (a list: one answer per attempt, then
acceptance). It records every accepted message with its envelope, whether the
connection was TLS and who logged in, and counts client connections (those that
said EHLO), the most open at once included.
:func:`make_certificate` makes a self-signed certificate for 127.0.0.1 and
localhost; :func:`silent_server` accepts connections and never says a word.
"""

from __future__ import annotations

import asyncio
import datetime
import ipaddress
import ssl
import threading
import warnings
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from aiosmtpd.controller import Controller
from aiosmtpd.smtp import SMTP, AuthResult, LoginPassword
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID

from tidings.embedded import free_port


@dataclass(frozen=True)
class Certificate:
    cert: Path
    key: Path

    def server_context(self) -> ssl.SSLContext:
        ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        ctx.load_cert_chain(self.cert, self.key)
        return ctx

    def client_context(self) -> ssl.SSLContext:
        """A client context that trusts this certificate (and nothing else)."""
        return ssl.create_default_context(cafile=str(self.cert))


def make_certificate(folder: Path) -> Certificate:
    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "fake smtp")])
    now = datetime.datetime.now(datetime.UTC)
    cert = (x509.CertificateBuilder().subject_name(name).issuer_name(name)
            .public_key(key.public_key()).serial_number(x509.random_serial_number())
            .not_valid_before(now - datetime.timedelta(minutes=5))
            .not_valid_after(now + datetime.timedelta(days=1))
            .add_extension(x509.SubjectAlternativeName([
                x509.DNSName("localhost"), x509.IPAddress(ipaddress.ip_address("127.0.0.1"))]),
                critical=False)
            .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
            .sign(key, hashes.SHA256()))
    files = Certificate(folder / "smtp-cert.pem", folder / "smtp-key.pem")
    files.cert.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    files.key.write_bytes(key.private_bytes(serialization.Encoding.PEM,
                                            serialization.PrivateFormat.PKCS8,
                                            serialization.NoEncryption()))
    return files


@dataclass
class Received:
    mail_from: str
    rcpt_tos: list[str]
    data: bytes
    tls: bool
    user: str | None  # who logged in, if anyone
    connection: int  # which connection (1, 2, ...) carried it
    mail_options: list[str]


@dataclass
class FakeSMTP:
    tls: Certificate | None = None  # offer STARTTLS with this certificate
    implicit_tls: bool = False  # TLS from the first byte (smtps)
    users: dict[str, str] | None = None  # user -> password; AUTH required when set
    rcpt_answers: dict[str, list[str]] = field(default_factory=dict)
    data_answers: dict[str, list[str]] = field(default_factory=dict)
    received: list[Received] = field(default_factory=list)
    connections: int = 0  # opened so far
    open_now: int = 0
    most_open: int = 0
    port: int = field(default_factory=free_port)
    _controller: Controller | None = None
    _lock: threading.Lock = field(default_factory=threading.Lock)

    @property
    def host(self) -> str:
        return "127.0.0.1"

    def url(self, scheme: str | None = None, user: str | None = None,
            password: str | None = None, query: str = "") -> str:
        scheme = scheme or ("smtps" if self.implicit_tls else "smtp")
        auth = f"{user}:{password}@" if user is not None else ""
        return f"{scheme}://{auth}{self.host}:{self.port}{query}"

    def answer_rcpt(self, address: str, *answers: str) -> None:
        self.rcpt_answers[address.lower()] = list(answers)

    def answer_data(self, address: str, *answers: str) -> None:
        self.data_answers[address.lower()] = list(answers)

    async def start(self) -> FakeSMTP:
        kwargs: dict[str, Any] = {}
        if self.tls is not None and not self.implicit_tls:
            kwargs["tls_context"] = self.tls.server_context()
        if self.users is not None:
            # aiosmtpd requires TLS for AUTH but sees only STARTTLS, not TLS from the start.
            kwargs.update(authenticator=self._authenticate, auth_required=True,
                          auth_require_tls=not self.implicit_tls)
        self._controller = _Controller(
            self, _Handler(self), hostname=self.host, port=self.port,
            ssl_context=self.tls.server_context() if self.implicit_tls and self.tls else None,
            server_hostname="fake-smtp.test", **kwargs)
        await asyncio.to_thread(self._controller.start)
        return self

    async def stop(self) -> None:
        if self._controller is not None:
            await asyncio.to_thread(self._controller.stop)
            self._controller = None

    def _authenticate(self, server: SMTP, session: Any, envelope: Any, mechanism: str,
                      auth_data: Any) -> AuthResult:
        if isinstance(auth_data, LoginPassword):
            user = auth_data.login.decode()
            if self.users and self.users.get(user) == auth_data.password.decode():
                return AuthResult(success=True, auth_data=user)
        return AuthResult(success=False, handled=False)

    def _opened(self) -> int:
        with self._lock:
            self.connections += 1
            self.open_now += 1
            self.most_open = max(self.most_open, self.open_now)
            return self.connections

    def _closed(self) -> None:
        with self._lock:
            self.open_now -= 1


class _Controller(Controller):
    def __init__(self, fake: FakeSMTP, *args: Any, **kwargs: Any):
        self.fake = fake
        super().__init__(*args, **kwargs)

    def factory(self) -> SMTP:
        return _Server(self.fake, self.handler, **self.SMTP_kwargs)


class _Server(SMTP):
    """aiosmtpd's server, numbering its client connections (those that say EHLO: the
    controller's start-up probe does not)."""

    def __init__(self, fake: FakeSMTP, *args: Any, **kwargs: Any):
        self.fake = fake
        self.number = 0
        with warnings.catch_warnings():  # AUTH without STARTTLS: TLS from the start here
            warnings.filterwarnings("ignore", "Requiring AUTH while not requiring TLS")
            super().__init__(*args, **kwargs)

    def connection_lost(self, error: Exception | None) -> None:
        if self.number:
            self.fake._closed()
        super().connection_lost(error)


class _Handler:
    def __init__(self, fake: FakeSMTP):
        self.fake = fake

    async def handle_EHLO(self, server: _Server, session: Any, envelope: Any, hostname: str,
                          responses: list[str]) -> list[str]:
        if not server.number:
            server.number = self.fake._opened()
        session.host_name = hostname
        return responses

    async def handle_RCPT(self, server: _Server, session: Any, envelope: Any, address: str,
                          rcpt_options: list[str]) -> str:
        script = self.fake.rcpt_answers.get(address.lower())
        if script:
            return script.pop(0)
        envelope.rcpt_tos.append(address)
        return "250 2.1.5 OK"

    async def handle_DATA(self, server: _Server, session: Any, envelope: Any) -> str:
        for rcpt in envelope.rcpt_tos:
            script = self.fake.data_answers.get(rcpt.lower())
            if script:
                return script.pop(0)
        self.fake.received.append(Received(
            envelope.mail_from, list(envelope.rcpt_tos), envelope.original_content,
            server.transport.get_extra_info("ssl_object") is not None,
            session.auth_data if session.authenticated else None,
            server.number, list(envelope.mail_options)))
        return "250 2.0.0 Message accepted for delivery"


@asynccontextmanager
async def silent_server() -> AsyncIterator[int]:
    """A port where connections are accepted and never answered (no greeting)."""
    held: list[asyncio.StreamWriter] = []

    async def hold(_reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        held.append(writer)

    server = await asyncio.start_server(hold, "127.0.0.1", 0)
    try:
        yield server.sockets[0].getsockname()[1]
    finally:
        server.close()
        for writer in held:
            writer.close()
        await server.wait_closed()
