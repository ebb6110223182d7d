"""E-mail messages without I/O: addresses, headers that cannot be injected, MIME parts."""

from __future__ import annotations

import email
import json
import re
from email.policy import default

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from tidings.core.email_message import (
    MAX_NAME,
    MAX_URL,
    BadAddress,
    Email,
    Sender,
    build_message,
    check_address,
    console_text,
    header_text,
    message_bytes,
    message_id,
    parse_sender,
    safe_url,
)

SENDER = Sender("noreply@example.com", "Example App")
NOW = 1_700_000_000.0
BASE_HEADERS = {"from", "to", "subject", "date", "message-id", "auto-submitted",
                "mime-version", "content-type", "content-transfer-encoding"}
ATEXT = "abcxyzABC0189!#$%&'*+/=?^_`{|}~-"


def parse(data: bytes) -> email.message.EmailMessage:
    return email.message_from_bytes(data, policy=default)  # type: ignore[return-value]


def content(part) -> str:
    """A part's text as written (the wire's CRLF line ends read back as LF)."""
    assert part is not None
    return part.get_content().replace("\r\n", "\n")


def mail(**kw) -> Email:
    base = dict(to="bob@example.com", subject="Hi", text="Hello", reference="n-1")
    return Email(**(base | kw))


def test_a_message_with_text_and_html_is_multipart_alternative():
    e = mail(subject="3 new comments", text="Line one\nLine two é", html="<p>Hi é</p>",
             unsubscribe_url="https://app.example.com/prefs?u=bob", to_name="Bob B.")
    got = parse(message_bytes(build_message(e, SENDER, NOW)))
    assert got.get_content_type() == "multipart/alternative"
    assert got["From"].addresses[0].addr_spec == "noreply@example.com"
    assert got["From"].addresses[0].display_name == "Example App"
    assert got["To"].addresses[0].display_name == "Bob B."
    assert got["Subject"] == "3 new comments"
    assert got["Message-ID"] == "<n-1@example.com>"
    assert got["Date"] == "Tue, 14 Nov 2023 22:13:20 +0000"
    assert got["List-Unsubscribe"] == "<https://app.example.com/prefs?u=bob>"
    assert got["List-Unsubscribe-Post"] == "List-Unsubscribe=One-Click"
    assert content(got.get_body(("plain",))) == "Line one\nLine two é\n"
    assert content(got.get_body(("html",))) == "<p>Hi é</p>\n"


def test_text_only_no_unsubscribe_and_plain_http_unsubscribe():
    got = parse(message_bytes(build_message(mail(), SENDER, NOW)))
    assert got.get_content_type() == "text/plain" and "List-Unsubscribe" not in got
    got = parse(message_bytes(build_message(
        mail(unsubscribe_url="http://127.0.0.1:8000/prefs"), SENDER, NOW)))
    assert got["List-Unsubscribe"] == "<http://127.0.0.1:8000/prefs>"
    assert "List-Unsubscribe-Post" not in got, "one-click is for https URLs (RFC 8058)"


@pytest.mark.parametrize("value", [
    "Hi\r\nBcc: eve@evil.com", "Hi\nBcc: eve@evil.com", "Hi\rBcc: eve@evil.com",
    "Hi\u2028Bcc: eve@evil.com", "Hi\x85Bcc: eve@evil.com", "Hi\x00Bcc: eve@evil.com",
    "=?utf-8?q?a=2C_eve=40evil=2Ecom=2C?=", "x =?utf-8?b?ZXZlQGV2aWwuY29tLA==?= y",
    "a, eve@evil.com", 'Bob" <eve@evil.com>, "x', "eve@evil.com",
])
def test_header_injection_attempts_stay_inside_their_header(value):
    e = mail(subject=value, to_name=value)
    data = message_bytes(build_message(e, SENDER, NOW))
    got = parse(data)
    assert {k.lower() for k in got.keys()} == BASE_HEADERS, "no header was added"
    assert [a.addr_spec for a in got["To"].addresses] == ["bob@example.com"]
    assert got["To"].addresses[0].display_name == header_text(value)
    assert got["Subject"] == header_text(value)
    long = mail(to_name="x " * 40 + ", eve@evil.com, " + value + "é" * 50)
    got = parse(message_bytes(build_message(long, SENDER, NOW)))
    assert [a.addr_spec for a in got["To"].addresses] == ["bob@example.com"]
    head = data.split(b"\r\n\r\n")[0].decode().split("\r\n")
    assert not any(line.lower().startswith("bcc") for line in head)


def test_same_email_same_bytes():
    e = mail(html="<b>x</b>")
    assert message_bytes(build_message(e, SENDER, NOW)) == message_bytes(
        build_message(e, SENDER, NOW))


def test_a_long_unsubscribe_url_stays_one_line_and_a_huge_one_is_refused():
    url = "https://app.example.com/preferences/" + "t" * 400
    data = message_bytes(build_message(mail(unsubscribe_url=url), SENDER, NOW))
    assert f"List-Unsubscribe: <{url}>\r\n".encode() in data
    with pytest.raises(ValueError, match="URL is over"):
        build_message(mail(unsubscribe_url="https://x/" + "t" * MAX_URL), SENDER, NOW)


def test_a_one_click_url_comes_first_then_the_preferences_page_each_on_its_line():
    one, page = "https://t.example/api/v1/unsubscribe?token=" + "a" * 700, "https://t.example/#prefs"
    data = message_bytes(build_message(mail(unsubscribe_url=one, preferences_url=page),
                                       SENDER, NOW))
    assert f"List-Unsubscribe: <{one}>,\r\n <{page}>\r\n".encode() in data
    got = parse(data)
    assert got["List-Unsubscribe"] == f"<{one}>, <{page}>"
    assert got["List-Unsubscribe-Post"] == "List-Unsubscribe=One-Click"
    only_page = parse(message_bytes(build_message(mail(preferences_url=page), SENDER, NOW)))
    assert only_page["List-Unsubscribe"] == f"<{page}>"
    assert "List-Unsubscribe-Post" not in only_page, "a page takes no one-click POST"
    with pytest.raises(ValueError, match="URL is over"):
        build_message(mail(preferences_url="https://x/" + "t" * MAX_URL), SENDER, NOW)


@pytest.mark.parametrize("address", [
    "", "bob", "@example.com", "bob@", "bob example@x.com", "bob@exa mple.com",
    "bob@example.com\r\nBcc: eve@evil.com", "bob@-x.com", "bob@x..com", ".bob@x.com",
    "bo..b@x.com", '"bob"@x.com', "bøb@x.com", "a" * 65 + "@x.com",
    "bob@" + "d" * 64 + ".com", "bob@example.com>", "<bob@example.com>",
])
def test_addresses_that_cannot_be_sent_to_are_refused(address):
    with pytest.raises(BadAddress):
        check_address(address)
    with pytest.raises(BadAddress):
        build_message(mail(to=address), SENDER, NOW)


def test_addresses_are_normalised():
    assert check_address("Bob.O'Neil+tag@Example.COM") == "Bob.O'Neil+tag@example.com"
    assert check_address("bob@bücher.example") == "bob@xn--bcher-kva.example"
    assert check_address("root@localhost") == "root@localhost"


def test_senders():
    assert parse_sender("noreply@example.com") == Sender("noreply@example.com")
    assert parse_sender(" Example App <noreply@example.com> ") == SENDER
    assert parse_sender('"Example App" <noreply@example.com>') == SENDER
    for bad in ("Example", "a@x.com, b@x.com", "A <a@x.com> B <b@x.com>", "<>", "x <a b@c>"):
        with pytest.raises(ValueError):
            parse_sender(bad)


def test_message_ids():
    assert message_id("n-1.x", "example.com") == "<n-1.x@example.com>"
    odd = message_id("a b<c>@\r\n", "example.com")
    assert re.fullmatch(r"<h[0-9a-f]{40}@example\.com>", odd)
    assert message_id("a b<c>@\r\n", "example.com") == odd
    assert message_id("x" * 65, "example.com") != message_id("x" * 66, "example.com")


def test_console_text_is_one_json_line_with_headers_and_bodies():
    line = console_text(mail(html="<p>x</p>", unsubscribe_url="https://a.example/p"),
                        SENDER, NOW)
    assert "\n" not in line
    got = json.loads(line)
    assert got["channel"] == "email" and got["text"] == "Hello" and got["html"] == "<p>x</p>"
    assert got["headers"]["To"] == "bob@example.com"
    assert got["headers"]["List-Unsubscribe"] == "<https://a.example/p>"


# -- properties ----------------------------------------------------------------------------

local_parts = st.text(ATEXT, min_size=1, max_size=20)
labels = st.from_regex(r"[a-z0-9](?:[a-z0-9-]{0,10}[a-z0-9])?", fullmatch=True)
good_addresses = st.builds(lambda local, dom: f"{local}@{'.'.join(dom)}",
                           local_parts, st.lists(labels, min_size=1, max_size=3))
any_addresses = st.one_of(good_addresses, st.text(max_size=40),
                          st.builds(lambda a, junk: a + junk, good_addresses, st.text(max_size=5)))
# Any characters (CR, LF, NUL, U+2028, non-ASCII), and pieces of headers, addresses and
# RFC 2047 encoded words put together.
header_values = st.one_of(
    st.text(max_size=300),
    st.lists(st.sampled_from(["=?utf-8?q?", "=?utf-8?b?", "?=", "=2C", "_", "ZXZl", ",", ";",
                              ":", "eve@evil.com", "\r\n", "\n", "Bcc: ", "<", ">", '"',
                              "\\", "(", ")", " ", "\t", "é", "a"]),
             max_size=40).map("".join),
    st.text(min_size=60, max_size=300))  # long: folded over several lines


@settings(max_examples=400, deadline=None)
@given(to=any_addresses, subject=header_values, name=st.one_of(st.none(), header_values),
       text=st.text(max_size=200), html=st.one_of(st.none(), st.text(max_size=200)),
       url=st.one_of(st.none(), st.text(max_size=100).map(lambda s: "https://x.example/" + s)),
       page=st.one_of(st.none(), st.text(max_size=100).map(lambda s: "http://y.example/" + s)),
       reference=st.one_of(st.text(max_size=80), st.text("abc.-", max_size=80)))
def test_any_input_gives_a_message_that_parses_with_only_its_own_headers(
        to, subject, name, text, html, url, page, reference):
    e = Email(to, subject, text, reference, html=html, unsubscribe_url=url, to_name=name,
              preferences_url=page)
    try:
        msg = build_message(e, SENDER, NOW)
    except BadAddress:
        with pytest.raises(BadAddress):
            check_address(to)
        return
    data = message_bytes(msg)
    assert data.isascii()
    lines = data.split(b"\r\n")
    assert all(b"\r" not in line and b"\n" not in line for line in lines), "bare CR or LF"
    assert all(len(line) <= 998 for line in lines)
    got = parse(data)
    expected = BASE_HEADERS | ({"list-unsubscribe", "list-unsubscribe-post"} if url else set())
    expected |= {"list-unsubscribe"} if page else set()
    if html is not None:
        expected -= {"content-transfer-encoding"}
    assert {k.lower() for k in got.keys()} == expected, "a header was injected or lost"
    assert [a.addr_spec for a in got["To"].addresses] == [check_address(to)]
    # A long name is folded into several encoded words; the stdlib's address parser keeps
    # the folding space between them (RFC 2047 says to drop it), so spaces are not compared.
    shown = got["To"].addresses[0].display_name
    assert shown.replace(" ", "") == header_text(name or "")[:MAX_NAME].replace(" ", "")
    assert got["Subject"] == header_text(subject)
    assert got["Message-ID"] == message_id(reference, "example.com")
    if url or page:
        assert got["List-Unsubscribe"] == ", ".join(f"<{safe_url(u)}>" for u in (url, page) if u)
    normalised = text.replace("\r\n", "\n").replace("\r", "\n")
    assert content(got.get_body(("plain",))).rstrip("\n") == normalised.rstrip("\n")
    if html is not None:
        normalised = html.replace("\r\n", "\n").replace("\r", "\n")
        assert content(got.get_body(("html",))).rstrip("\n") == normalised.rstrip("\n")


@given(st.text())
def test_header_text_has_no_line_breaks_or_controls(value):
    out = header_text(value)
    assert not re.search(r"[\x00-\x1f\x7f-\x9f\u2028\u2029]", out)
    assert out == out.strip() and "  " not in out


@given(st.text(max_size=200))
def test_safe_urls_cannot_leave_their_angle_brackets(url):
    out = safe_url(url)
    assert out.isascii() and not re.search(r"[\s<>\"\x00-\x1f\x7f]", out)


@given(any_addresses)
def test_a_checked_address_is_a_plain_ascii_addr_spec(address):
    try:
        out = check_address(address)
    except BadAddress:
        return
    assert re.fullmatch(r"[A-Za-z0-9!#$%&'*+/=?^_`{|}~.-]+@[a-z0-9.-]+", out)
    assert len(out) <= 254 and check_address(out) == out
