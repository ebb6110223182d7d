"""Pure socket rules of issue 12: the browser-origin rule and the per-socket message budget."""

from __future__ import annotations

import uuid

import msgspec
import pytest
from hypothesis import given
from hypothesis import strategies as st

from tidings.core import protocol
from tidings.core.origins import host_allowed, is_loopback, origin_allowed, origin_of
from tidings.core.protocol import MESSAGE_BURST, MESSAGE_RATE, Admit, MessageBudget

ALLOWED = ("https://app.example", "http://allowed.example:8080")


@pytest.mark.parametrize(("origin", "public", "loopback", "ok"), [
    ("https://app.example", None, False, True),
    ("https://APP.example:443", None, False, True),  # the same origin, written otherwise
    ("http://app.example", None, False, False),  # another scheme is another origin
    ("http://allowed.example:8080", None, False, True),
    ("http://allowed.example", None, False, False),  # another port
    ("https://notify.example.com", "https://notify.example.com/base/", False, True),
    ("https://evil.example", "https://notify.example.com", False, False),
    ("http://127.0.0.1:5173", None, True, True),
    ("http://localhost:8000", None, True, True),
    ("http://[::1]:8000", None, True, True),
    ("http://127.0.0.1:5173", None, False, False),  # listening beyond loopback: not trusted
    ("http://localhost.evil.example", None, True, False),
    ("null", None, True, False),
    ("file://", None, True, False),
])
def test_origin_rule(origin, public, loopback, ok):
    assert origin_allowed(origin, ALLOWED, public, loopback) is ok


hosts = st.from_regex(r"[a-z][a-z0-9-]{0,20}(\.[a-z]{2,6}){1,2}", fullmatch=True)


@given(host=hosts, port=st.integers(1, 65535), scheme=st.sampled_from(["http", "https"]))
def test_an_origin_matching_only_the_host_header_is_refused(host, port, scheme):
    """DNS rebinding: the page's host equals the Host header; that alone never admits it."""
    origin = f"{scheme}://{host}:{port}"
    assert not origin_allowed(origin, (), None, loopback_bind=False)
    assert not origin_allowed(origin, ("https://other.example",), None, loopback_bind=True)
    assert origin_allowed(origin, ("*",), None, loopback_bind=False)
    assert origin_allowed(origin, (), origin + "/some/path", loopback_bind=False)


@given(host=hosts, port=st.integers(1, 65535))
def test_a_rebound_host_gets_nothing_of_a_loopback_bind(host, port):
    """DNS rebinding against the HTTP API: a name that is not loopback (nor the public URL's)
    is refused on a loopback bind; on a network bind (dev mode asked for) it is not judged."""
    for header in (host, f"{host}:{port}", f"localhost.{host}:{port}", f"127.0.0.1.{host}"):
        assert not host_allowed(header, None, loopback_bind=True)
        assert not host_allowed(header, "https://inbox.example-app.test", loopback_bind=True)
        assert host_allowed(header, None, loopback_bind=False)
    assert host_allowed(f"{host}:{port}", f"https://{host}/x", loopback_bind=True)
    for header in (f"127.0.0.1:{port}", f"LocalHost:{port}", f"[::1]:{port}", "127.0.0.2"):
        assert host_allowed(header, None, loopback_bind=True)
    for header in (None, "", "[::1", ":80"):
        assert not host_allowed(header, None, loopback_bind=True)


def test_origin_of_and_loopback_binds():
    assert origin_of("HTTPS://Example.com/x?y") == "https://example.com:443"
    assert origin_of("http://[::1]:80") == "http://[::1]:80"
    assert origin_of("ftp://example.com") is None and origin_of("http://") is None
    assert origin_of("http://h:99999") is None
    assert all(map(is_loopback, ["127.0.0.1", "127.0.0.2", "::1", "localhost", "[::1]"]))
    assert not any(map(is_loopback, ["0.0.0.0", "::", "10.0.0.1", "example.com"]))


@given(gaps=st.lists(st.floats(0, 0.5, allow_nan=False), max_size=300))
def test_budget_never_allows_more_than_the_burst_plus_the_rate(gaps):
    budget, now, allowed = MessageBudget(0.0), 0.0, 0
    for gap in gaps:
        now += gap
        verdict = budget.take(now)
        if verdict is Admit.CLOSE:
            return
        allowed += verdict is Admit.ALLOW
        assert allowed <= MESSAGE_BURST + now * MESSAGE_RATE + 1e-9


@given(start=st.floats(0, 1e6, allow_nan=False), n=st.integers(1, 2000))
def test_budget_under_the_rate_is_never_refused(start, n):
    budget = MessageBudget(start)
    step = 1.0 / MESSAGE_RATE
    assert all(budget.take(start + i * step) is Admit.ALLOW for i in range(n))


def test_budget_refuses_past_the_burst_then_closes_a_flood_but_not_a_pause():
    budget = MessageBudget(0.0)
    verdicts = [budget.take(0.0) for _ in range(int(2 * MESSAGE_BURST) + 1)]
    assert verdicts.count(Admit.ALLOW) == MESSAGE_BURST
    assert verdicts.count(Admit.REFUSE) == MESSAGE_BURST and verdicts[-1] is Admit.CLOSE
    calm = MessageBudget(0.0)
    for _ in range(int(1.5 * MESSAGE_BURST)):
        calm.take(0.0)
    assert calm.take(10.0) is Admit.ALLOW, "a client that paused is served again"


def test_mark_read_over_the_cap_is_refused_not_malformed():
    uids = [str(uuid.uuid4()) for _ in range(protocol.MAX_MARK_READ + 1)]
    message = protocol.parse(msgspec.json.encode({"type": "mark_read", "uids": uids}))
    assert protocol.refusal(message)["code"] == "too_many_uids"
    fine = protocol.parse(msgspec.json.encode({"type": "mark_read", "uids": uids[:1]}))
    assert protocol.refusal(fine) is None
