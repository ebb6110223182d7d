"""The SMTP mailer against a real SMTP server (aiosmtpd): parts, outcomes, TLS, auth, reuse."""

from __future__ import annotations

import asyncio
import email
from dataclasses import replace
from email.policy import default

import pytest

from tidings import config
from tidings.core.email_message import Email, parse_sender
from tidings.core.mail_outcomes import RETRY_BASE, MailResult
from tidings.core.smtp_url import parse_smtp_url
from tidings.embedded import free_port
from tidings.mail.console import ConsoleMailer
from tidings.mail.factory import mailer
from tidings.mail.smtp import SmtpMailer

from fakes.fake_smtp import Certificate, FakeSMTP, silent_server
from helpers import eventually

SENDER = parse_sender("Tidings Test <noreply@tidings.test>")
BOB = "bob@example.com"
UNSUBSCRIBE = "https://app.example.com/preferences?u=bob"


def message(**kw) -> Email:
    base = dict(to=BOB, subject="3 new comments", text="Ann, Bo and Cy commented.",
                reference="n-1", html="<p>Ann, Bo and Cy <b>commented</b>.</p>",
                unsubscribe_url=UNSUBSCRIBE, to_name="Bob")
    return Email(**(base | kw))


def smtp(url: str, certificate: Certificate | None = None, **kw) -> SmtpMailer:
    return SmtpMailer(parse_smtp_url(url), SENDER, local_hostname="client.test",
                      tls_context=certificate.client_context() if certificate else None, **kw)


def parsed(data: bytes) -> email.message.EmailMessage:
    return email.message_from_bytes(data, policy=default)  # type: ignore[return-value]


async def test_text_and_html_parts_arrive_with_list_unsubscribe(smtp_server):
    server: FakeSMTP = await smtp_server()
    m = smtp(server.url())
    try:
        outcome = await m.send(message())
    finally:
        await m.close()
    assert outcome.result is MailResult.SENT and outcome.detail.startswith("250")
    [got] = server.received
    assert got.mail_from == "noreply@tidings.test" and got.rcpt_tos == [BOB]
    assert not got.tls, "a local relay without STARTTLS is spoken to in plain"
    assert any(o.upper().startswith("SIZE=") for o in got.mail_options)
    msg = parsed(got.data)
    assert msg.get_content_type() == "multipart/alternative"
    assert msg["Subject"] == "3 new comments" and msg["Message-ID"] == "<n-1@tidings.test>"
    assert str(msg["From"]) == "Tidings Test <noreply@tidings.test>"
    assert str(msg["To"]) == "Bob <bob@example.com>"
    assert msg["List-Unsubscribe"] == f"<{UNSUBSCRIBE}>"
    assert msg["List-Unsubscribe-Post"] == "List-Unsubscribe=One-Click"
    text = msg.get_body(("plain",))
    html = msg.get_body(("html",))
    assert text is not None and text.get_content().strip() == "Ann, Bo and Cy commented."
    assert html is not None and "<b>commented</b>" in html.get_content()


async def test_a_4xx_is_a_retry_with_backoff_and_the_next_attempt_goes(smtp_server):
    server = await smtp_server()
    server.answer_rcpt(BOB, "451 4.7.1 Greylisted, come back later")
    m = smtp(server.url())
    try:
        first = await m.send(message())
        second = await m.send(message(attempt=2))
    finally:
        await m.close()
    assert first.result is MailResult.RETRY and "451" in first.detail
    assert first.after is not None and RETRY_BASE / 2 <= first.after <= RETRY_BASE
    assert second.result is MailResult.SENT
    assert len(server.received) == 1 and server.connections == 1, (
        "the refused transaction was reset (RSET) and its connection reused")


async def test_4xx_after_data_and_at_mail_from_are_retries(smtp_server):
    server = await smtp_server()
    server.answer_data(BOB, "452 4.3.1 Insufficient system storage")
    m = smtp(server.url())
    try:
        outcome = await m.send(message(attempt=3))
    finally:
        await m.close()
    assert outcome.result is MailResult.RETRY and "DATA: 452" in outcome.detail
    assert outcome.after is not None and 2 * RETRY_BASE <= outcome.after <= 4 * RETRY_BASE
    assert server.received == []


@pytest.mark.parametrize(("where", "answer", "result"), [
    ("rcpt", "550 5.1.1 <bob@example.com>: Recipient address rejected: User unknown",
     MailResult.BOUNCE),
    ("rcpt", "552 5.2.2 Mailbox full", MailResult.BOUNCE),
    ("rcpt", "554 5.7.1 Relay access denied", MailResult.FAILED),
    ("data", "550 5.1.1 mailbox unavailable", MailResult.BOUNCE),
    ("data", "554 5.7.1 Message rejected as spam", MailResult.FAILED),
])
async def test_5xx_for_the_recipient_is_a_bounce(smtp_server, where, answer, result):
    server = await smtp_server()
    (server.answer_rcpt if where == "rcpt" else server.answer_data)(BOB, answer)
    m = smtp(server.url())
    try:
        outcome = await m.send(message())
        after = await m.send(message(to="carol@example.com"))
    finally:
        await m.close()
    assert outcome.result is result and answer.split()[0] in outcome.detail
    assert after.result is MailResult.SENT, "the connection serves the next message"
    assert [r.rcpt_tos for r in server.received] == [["carol@example.com"]]


async def test_an_unreachable_server_is_a_retry():
    m = smtp(f"smtp://127.0.0.1:{free_port()}")
    try:
        outcome = await m.send(message())
    finally:
        await m.close()
    assert outcome.result is MailResult.RETRY and "connecting" in outcome.detail
    assert outcome.after is not None and outcome.after >= RETRY_BASE / 2


async def test_a_server_that_never_answers_is_a_retry_after_the_timeout():
    async with silent_server() as port:
        m = smtp(f"smtp://127.0.0.1:{port}", timeout=0.3)
        try:
            outcome = await m.send(message())
        finally:
            await m.close()
    assert outcome.result is MailResult.RETRY and "Timeout" in outcome.detail


async def test_header_injection_is_neutralised_and_a_forged_address_refused(smtp_server):
    server = await smtp_server()
    m = smtp(server.url())
    try:
        sent = await m.send(message(subject="Hello\r\nBcc: eve@evil.example\r\n\r\nforged",
                                    to_name="Bob\nCc: eve@evil.example"))
        refused = await m.send(message(to="bob@example.com\r\nBcc: eve@evil.example"))
        refused_rcpt = await m.send(message(to="bob@example.com>\r\nRCPT TO:<eve@evil.example"))
    finally:
        await m.close()
    assert sent.result is MailResult.SENT
    assert refused.result is MailResult.BOUNCE and refused_rcpt.result is MailResult.BOUNCE
    [got] = server.received
    assert got.rcpt_tos == [BOB]
    msg = parsed(got.data)
    assert "Bcc" not in msg and "Cc" not in msg
    assert msg["Subject"] == "Hello Bcc: eve@evil.example forged"
    assert [a.addr_spec for a in msg["To"].addresses] == [BOB]
    head = got.data.split(b"\r\n\r\n")[0]
    assert not any(line.lower().startswith((b"bcc", b"cc")) for line in head.split(b"\r\n"))


async def test_starttls_when_offered_and_when_required(smtp_server, certificate):
    server = await smtp_server(tls=certificate)
    for url in (server.url(), server.url(query="?starttls=require")):
        m = smtp(url, certificate)
        try:
            assert (await m.send(message())).result is MailResult.SENT
        finally:
            await m.close()
    assert [r.tls for r in server.received] == [True, True]


async def test_required_starttls_that_is_not_offered_sends_nothing(smtp_server):
    server = await smtp_server()
    m = smtp(server.url(query="?starttls=require"))
    try:
        outcome = await m.send(message())
    finally:
        await m.close()
    assert outcome.result is MailResult.RETRY and "STARTTLS" in outcome.detail
    assert server.received == []


async def test_an_untrusted_certificate_sends_nothing(smtp_server, certificate):
    server = await smtp_server(tls=certificate)
    m = smtp(server.url(query="?starttls=require"))  # the system trust store
    try:
        outcome = await m.send(message())
    finally:
        await m.close()
    assert outcome.result is MailResult.RETRY and "CERTIFICATE_VERIFY_FAILED" in outcome.detail
    assert server.received == []


async def test_implicit_tls(smtp_server, certificate):
    server = await smtp_server(tls=certificate, implicit_tls=True)
    m = smtp(server.url(), certificate)
    try:
        outcome = await m.send(message())
    finally:
        await m.close()
    assert outcome.result is MailResult.SENT
    assert [r.tls for r in server.received] == [True]


@pytest.mark.parametrize("implicit", [False, True])
async def test_auth_over_tls(smtp_server, certificate, implicit):
    server = await smtp_server(tls=certificate, implicit_tls=implicit,
                               users={"mailer": "p@ss word"})
    good = smtp(server.url(user="mailer", password="p%40ss%20word"), certificate)
    bad = smtp(server.url(user="mailer", password="wrong"), certificate)
    try:
        sent = await good.send(message())
        refused = await bad.send(message())
    finally:
        await good.close()
        await bad.close()
    assert sent.result is MailResult.SENT
    assert refused.result is MailResult.RETRY and "AUTH: 535" in refused.detail
    assert [(r.user, r.tls) for r in server.received] == [("mailer", True)]


async def test_without_credentials_an_auth_server_refuses(smtp_server, certificate):
    server = await smtp_server(tls=certificate, users={"mailer": "pw"})
    m = smtp(server.url(), certificate)
    try:
        outcome = await m.send(message())
    finally:
        await m.close()
    assert outcome.result is MailResult.FAILED and "530" in outcome.detail
    assert server.received == []


async def test_connections_are_reused_and_a_dropped_one_replaced(smtp_server):
    server = await smtp_server()
    m = smtp(server.url())
    try:
        for n in range(3):
            assert (await m.send(message(reference=f"n-{n}"))).result is MailResult.SENT
        assert server.connections == 1
        await server.stop()  # every connection dropped; then a new server on the same port
        await server.start()
        assert (await m.send(message(reference="n-3"))).result is MailResult.SENT
    finally:
        await m.close()
    assert [r.connection for r in server.received] == [1, 1, 1, 2]


async def test_sends_at_once_are_bounded_by_the_pool(smtp_server):
    server = await smtp_server()
    m = smtp(server.url(), connections=3)
    try:
        outcomes = await asyncio.gather(*(m.send(message(to=f"user{n}@example.com",
                                                         reference=f"n-{n}"))
                                          for n in range(12)))
    finally:
        await m.close()
    assert {o.result for o in outcomes} == {MailResult.SENT}
    assert len(server.received) == 12
    assert server.most_open <= 3 and server.connections <= 3

    def all_closed() -> bool:  # close() ended the pooled connections
        return server.open_now == 0
    await eventually(all_closed, within=5, every=0.01)


async def test_idle_connections_are_not_reused_past_their_time(smtp_server):
    server = await smtp_server()
    m = smtp(server.url(), idle=0.0)
    try:
        for n in range(2):
            assert (await m.send(message(reference=f"n-{n}"))).result is MailResult.SENT
    finally:
        await m.close()
    assert [r.connection for r in server.received] == [1, 2]


async def test_the_factory_picks_smtp_from_settings_else_the_console(smtp_server, capsys):
    server = await smtp_server()
    settings = config.load({"TIDINGS_SMTP_URL": server.url(),
                            "TIDINGS_EMAIL_FROM": "Tidings Test <noreply@tidings.test>",
                            "TIDINGS_SMTP_TIMEOUT": "5", "TIDINGS_SMTP_CONNECTIONS": "2"})
    m = mailer(settings)
    try:
        assert isinstance(m, SmtpMailer)
        assert (await m.send(message())).result is MailResult.SENT
    finally:
        await m.close()
    assert len(server.received) == 1

    console = mailer(replace(settings, smtp_url=None))
    assert isinstance(console, ConsoleMailer)
    assert (await console.send(message())).result is MailResult.SENT
    assert (await console.send(message(to="not an address"))).result is MailResult.BOUNCE
    line = capsys.readouterr().out.strip()
    assert line.count("\n") == 0 and '"List-Unsubscribe":"<https://app.example.com' in line
    assert '"From":"Tidings Test <noreply@tidings.test>"' in line
