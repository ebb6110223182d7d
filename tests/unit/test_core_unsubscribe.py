"""One-click unsubscribe tokens: what one key signs, only that key reads."""

from __future__ import annotations

import base64
import json
from urllib.parse import parse_qs, urlsplit

import pytest
from hypothesis import given
from hypothesis import strategies as st

from tidings.core.errors import TidingsError
from tidings.core.unsubscribe import MAX_TOKEN, link, read, signing_key, token

KEY = signing_key("s" * 40)
kinds = st.from_regex(r"[a-z][a-z0-9_.-]{0,20}", fullmatch=True)


def b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


@given(user=st.text(max_size=80), kind=kinds)
def test_a_token_reads_back_as_its_user_and_type(user, kind):
    made = token(KEY, user, kind)
    assert made.isascii() and read(KEY, made) == (user, kind)
    assert read(KEY, parse_qs(urlsplit(link("https://t.example", KEY, user, kind)).query)[
        "token"][0]) == (user, kind)


def refused(text: str, key: bytes = KEY) -> None:
    with pytest.raises(TidingsError) as caught:
        read(key, text)
    assert (caught.value.status, caught.value.code) == (403, "invalid_unsubscribe_token")


def test_another_key_a_changed_payload_or_mac_and_junk_are_refused():
    good = token(KEY, "alice", "comment")
    refused(good, signing_key("t" * 40))
    payload, _, mac = good.partition(".")
    refused(f"{b64(json.dumps(['bob', 'comment']).encode())}.{mac}")
    refused(f"{payload}.{mac[:-1]}{'A' if mac[-1] != 'A' else 'B'}")
    for junk in ("", ".", payload, f"{payload}.", f".{mac}", "é.é", "x" * (MAX_TOKEN + 1),
                 good + "x"):
        refused(junk)


def test_a_signed_payload_that_is_not_a_user_and_a_type_is_refused():
    """Only :func:`token` makes payloads, but the key signing another shape changes nothing."""
    from tidings.core import unsubscribe

    for shape in (["alice"], ["alice", "Not A Type!"], ["alice", 3], {"u": "alice"}):
        payload = b64(json.dumps(shape).encode())
        refused(f"{payload}.{unsubscribe._mac(KEY, payload)}")


def test_the_key_is_not_the_secret_and_depends_on_it():
    assert KEY != b"s" * 40 and len(KEY) == 32 and signing_key("s" * 40) == KEY
