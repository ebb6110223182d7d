"""E-mail rules without I/O: SMTP replies to outcomes, the retry schedule, the SMTP URL."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from tidings.core.mail_outcomes import (
    RETRY_BASE,
    RETRY_CAP,
    MailOutcome,
    MailResult,
    reply_outcome,
    retry_delay,
)
from tidings.core.smtp_url import SmtpTarget, Tls, parse_smtp_url

BOB = "bob@example.com"


@pytest.mark.parametrize(("stage", "code", "text", "result"), [
    ("rcpt", 450, "4.2.1 Mailbox busy", MailResult.RETRY),
    ("rcpt", 451, "4.7.1 Greylisted, try again later", MailResult.RETRY),
    ("mail", 452, "4.3.1 Insufficient storage", MailResult.RETRY),
    ("data", 421, "4.4.2 Timeout", MailResult.RETRY),
    ("connect", 554, "no SMTP service here", MailResult.RETRY),
    ("auth", 535, "5.7.8 Authentication credentials invalid", MailResult.RETRY),
    ("starttls", 454, "TLS not available", MailResult.RETRY),
    ("rcpt", 550, "5.1.1 <bob@example.com>: user unknown", MailResult.BOUNCE),
    ("rcpt", 553, "mailbox name not allowed", MailResult.BOUNCE),
    ("rcpt", 552, "5.2.2 mailbox full", MailResult.BOUNCE),
    ("rcpt", 550, "5.7.1 Relaying denied", MailResult.FAILED),
    ("rcpt", 530, "5.7.0 Authentication required", MailResult.FAILED),
    ("data", 550, "5.1.1 user unknown", MailResult.BOUNCE),
    ("data", 554, "delivery to BOB@example.com refused", MailResult.BOUNCE),
    ("data", 554, "5.7.1 message content rejected as spam", MailResult.FAILED),
    ("data", 552, "5.3.4 message too big", MailResult.FAILED),
    ("mail", 550, "5.7.1 sender rejected", MailResult.FAILED),
])
def test_replies_map_to_outcomes(stage, code, text, result):
    outcome = reply_outcome(stage, code, text, recipient=BOB, after=90.0)
    assert outcome.result is result
    assert str(code) in outcome.detail and " ".join(text.split()) in outcome.detail
    assert outcome.after == (90.0 if result is MailResult.RETRY else None)


def test_outcome_constructors():
    assert MailOutcome.sent() == MailOutcome(MailResult.SENT)
    assert MailOutcome.retry(5, "x") == MailOutcome(MailResult.RETRY, "x", 5)
    assert MailOutcome.bounce("x").after is None and MailOutcome.failed("y").detail == "y"


@given(st.integers(min_value=1, max_value=60), st.floats(min_value=0, max_value=1,
                                                         exclude_max=True))
def test_retry_delays_grow_to_the_cap_with_jitter(attempt, rand):
    delay = retry_delay(attempt, rand)
    ceiling = min(RETRY_CAP, RETRY_BASE * 2 ** (attempt - 1))
    assert ceiling / 2 <= delay <= ceiling
    assert retry_delay(attempt + 1, rand) >= delay


@given(st.integers(min_value=100, max_value=599), st.text(max_size=80),
       st.sampled_from(["connect", "ehlo", "starttls", "auth", "mail", "rcpt", "data"]))
def test_every_reply_has_an_outcome_and_only_5xx_is_final(code, text, stage):
    outcome = reply_outcome(stage, code, text, recipient=BOB, after=1.0)
    assert "\n" not in outcome.detail and "\r" not in outcome.detail
    if code < 500:
        assert outcome.result is MailResult.RETRY
    if outcome.result is MailResult.BOUNCE:
        assert stage in ("rcpt", "data")


@pytest.mark.parametrize(("url", "target"), [
    ("smtp://user:p%40ss@mail.example.com:587",
     SmtpTarget("mail.example.com", 587, Tls.REQUIRE, "user", "p@ss")),
    ("smtps://user:pw@mail.example.com", SmtpTarget("mail.example.com", 465, Tls.IMPLICIT,
                                                    "user", "pw")),
    ("smtps://mail.example.com:2465", SmtpTarget("mail.example.com", 2465, Tls.IMPLICIT)),
    ("smtp://localhost:25", SmtpTarget("localhost", 25, Tls.AUTO)),
    ("smtp://relay.internal", SmtpTarget("relay.internal", 25, Tls.AUTO)),
    ("smtp://relay.internal:2525?starttls=require", SmtpTarget("relay.internal", 2525,
                                                               Tls.REQUIRE)),
    ("smtp://relay.internal:25?starttls=never", SmtpTarget("relay.internal", 25, Tls.NEVER)),
    ("smtp://u:p@relay.internal:25", SmtpTarget("relay.internal", 25, Tls.REQUIRE, "u", "p")),
    ("smtp://u:p@127.0.0.1:25", SmtpTarget("127.0.0.1", 25, Tls.AUTO, "u", "p")),
    ("smtp://u:p@[::1]:25?starttls=never", SmtpTarget("::1", 25, Tls.NEVER, "u", "p")),
])
def test_smtp_urls(url, target):
    assert parse_smtp_url(url) == target


@pytest.mark.parametrize(("url", "problem"), [
    ("http://mail.example.com", "must start with smtp://"),
    ("smtp://", "names no host"),
    ("smtp://mail.example.com:0", "port"),
    ("smtp://mail.example.com:99999", "port"),
    ("smtp://mail.example.com:x", "port"),
    ("smtp://mail.example.com/path", "path"),
    ("smtp://mail.example.com?tls=1", "only"),
    ("smtp://mail.example.com?starttls=maybe", "starttls=require or starttls=never"),
    ("smtps://mail.example.com?starttls=require", "TLS already"),
    ("smtp://u:p@mail.example.com?starttls=never", "credentials in the clear"),
])
def test_bad_smtp_urls(url, problem):
    with pytest.raises(ValueError, match=problem):
        parse_smtp_url(url)


def test_the_password_stays_out_of_repr():
    assert "s3cret" not in repr(parse_smtp_url("smtps://u:s3cret@mail.example.com"))
