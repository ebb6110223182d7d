"""The pure Web Push rules: endpoints and addresses (SSRF), keys, topics, payload sizes; and the
message encryption (RFC 8291's own example) and VAPID keys."""

from __future__ import annotations

import base64
import ipaddress
import re

import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec
from hypothesis import given
from hypothesis import strategies as st

from tidings.core.errors import ValidationError
from tidings.core.push import PushJob
from tidings.core.requests import PushOptions
from tidings.core.webpush import (
    AUTH_PATTERN,
    KNOWN_HOSTS,
    P256DH_PATTERN,
    WEBPUSH_MAX_BYTES,
    HostPolicy,
    check_endpoint,
    check_keys,
    endpoint_pattern,
    is_public,
    topic,
    webpush_payload,
    webpush_size,
)
from tidings.push import ece, vapid

DEFAULT = HostPolicy()


def b64url(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def unb64url(text: str) -> bytes:
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


@given(st.from_regex(endpoint_pattern(KNOWN_HOSTS), fullmatch=True))
def test_every_endpoint_the_api_description_allows_is_accepted(url):
    """The document's pattern (the default hosts) is what registration accepts."""
    endpoint = check_endpoint(url, DEFAULT)
    assert DEFAULT.name_allowed(endpoint.host) and endpoint.address is None


@given(st.ip_addresses())
def test_an_address_literal_is_accepted_only_when_listed(ip):
    host = f"[{ip}]" if ip.version == 6 else str(ip)
    url = f"https://{host}/push"
    with pytest.raises(ValidationError):
        check_endpoint(url, DEFAULT)
    if not is_public(ip):  # a wildcard name pattern never lets a private address in
        with pytest.raises(ValidationError):
            check_endpoint(url, HostPolicy.parse(["*"]))
    assert check_endpoint(url, HostPolicy.parse([str(ip)])).address == ip


@given(st.ip_addresses())
def test_listed_networks_allow_their_addresses_and_private_ones_are_refused(ip):
    assert HostPolicy.parse([f"{ip}"]).address_allowed(ip)
    assert DEFAULT.address_allowed(ip) == is_public(ip)


@pytest.mark.parametrize("address", ["127.0.0.1", "10.0.0.1", "172.16.0.1", "192.168.0.1",
                                     "169.254.169.254", "100.64.0.1", "0.0.0.0", "224.0.0.1",
                                     "::1", "fe80::1", "fc00::1", "::ffff:127.0.0.1",
                                     "::ffff:10.0.0.1", "::"])
def test_private_loopback_and_link_local_addresses_are_not_public(address):
    assert not DEFAULT.address_allowed(ipaddress.ip_address(address))


def test_mapped_addresses_are_judged_as_ipv4():
    assert HostPolicy.parse(["127.0.0.1"]).address_allowed(ipaddress.ip_address(
        "::ffff:127.0.0.1"))
    assert DEFAULT.address_allowed(ipaddress.ip_address("::ffff:8.8.8.8"))


@pytest.mark.parametrize(("host", "allowed"), [
    ("fcm.googleapis.com", True), ("updates.push.services.mozilla.com", True),
    ("a.b.notify.windows.com", True), ("web.push.apple.com", True),
    ("push.services.mozilla.com", False), ("xfcm.googleapis.com", False),
    ("fcm.googleapis.com.evil.example", False), ("notify.windows.com", False),
    ("evilnotify.windows.com", False),
])
def test_name_patterns(host, allowed):
    assert DEFAULT.name_allowed(host) is allowed


@pytest.mark.parametrize("entry", ["", "https://x", "a..b", "*.", "-a.com", "x/8"])
def test_bad_setting_entries_are_refused(entry):
    with pytest.raises(ValueError, match="not a host name"):
        HostPolicy.parse([entry])


def test_the_vapid_audience_is_the_endpoint_origin():
    policy = HostPolicy.parse(["*.push.example.org", "::1"])
    assert check_endpoint("https://a.push.example.org/x?y=1", policy).origin == \
        "https://a.push.example.org"
    assert check_endpoint("https://a.push.example.org:443/x", policy).origin == \
        "https://a.push.example.org"
    assert check_endpoint("https://[::1]:8443/x", policy).origin == "https://[::1]:8443"


@given(st.binary(min_size=64, max_size=64), st.binary(min_size=16, max_size=16))
def test_well_formed_keys_match_their_patterns(point, secret):
    p256dh, auth = b64url(b"\x04" + point), b64url(secret)
    assert re.fullmatch(P256DH_PATTERN[1:-1], p256dh) and re.fullmatch(AUTH_PATTERN[1:-1], auth)
    check_keys(p256dh, auth)


@given(st.from_regex(P256DH_PATTERN, fullmatch=True), st.from_regex(AUTH_PATTERN, fullmatch=True))
def test_strings_matching_the_patterns_are_keys_of_the_right_size(p256dh, auth):
    point = unb64url(p256dh)
    assert len(point) == 65 and point[0] == 4 and b64url(point) == p256dh
    assert len(unb64url(auth)) == 16 and b64url(unb64url(auth)) == auth


@given(st.text(min_size=1, max_size=64))
def test_topics_are_short_base64url_and_stable(collapse):
    t = topic(collapse)
    assert re.fullmatch(r"[A-Za-z0-9_-]{1,32}", t) and topic(collapse) == t
    if re.fullmatch(r"[A-Za-z0-9_-]{1,32}", collapse):
        assert t == collapse


_text = st.text(max_size=5000)


@given(_text.filter(bool), st.none() | st.text(max_size=255),
       st.none() | st.dictionaries(st.text(max_size=20), st.text(max_size=3000), max_size=3))
def test_payloads_fit_one_record_of_the_push_service(message, title, data):
    job = PushJob(uid="u-1", user_id="u", message=message, title=title, data=data,
                  push=PushOptions(badge=1))
    payload = webpush_payload(job)
    assert webpush_size(payload) <= WEBPUSH_MAX_BYTES
    assert payload["uid"] == "u-1" and payload["badge"] == 1


def test_rfc_8291_example_message():
    """Section 5 of RFC 8291: the same keys and salt give the same message byte for byte."""
    server = ec.derive_private_key(int.from_bytes(unb64url(
        "yfWPiYE-n46HLnH0KqZOF1fJJU3MYrct3AELtAQ-oRw"), "big"), ec.SECP256R1())
    browser = ec.derive_private_key(int.from_bytes(unb64url(
        "q1dXpw3UpT5VOmu_cf_v6ih07Aems3njxI-JWgLcM94"), "big"), ec.SECP256R1())
    p256dh = browser.public_key().public_bytes(serialization.Encoding.X962,
                                               serialization.PublicFormat.UncompressedPoint)
    body = ece.encrypt(b"When I grow up, I want to be a watermelon", p256dh,
                       unb64url("BTBZMqHH6r4Tts7J_aSIgg"), salt=unb64url("DGv6ra1nlYgDCS1FRnbzlw"),
                       server_key=server)
    assert b64url(body) == (
        "DGv6ra1nlYgDCS1FRnbzlwAAEABBBP4z9KsN6nGRTbVYI_c7VJSPQTBtkgcy27mlmlMoZIIgDll6e3vCYLocInm"
        "YWAmS6TlzAC8wEqKK6PBru3jl7A_yl95bQpu6cVPTpK4Mqgkf1CXztLVBSt2Ks3oZwbuwXPXLWyouBWLVWGNWQe"
        "xSgSxsj_Qulcy4a-fN")


def test_a_point_off_the_curve_is_a_bad_key():
    with pytest.raises(ece.BadSubscriptionKey):
        ece.encrypt(b"x", b"\x04" + b"\x00" * 64, b"\x00" * 16)


def test_vapid_keys_load_from_what_generate_prints_and_from_pem():
    private, public = vapid.generate()
    key = vapid.load_key(private)
    assert vapid.public_key(key) == public and len(unb64url(public)) == 65
    pem = key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                            serialization.NoEncryption()).decode()
    assert vapid.public_key(vapid.load_key(pem)) == public
    for bad in ("", "abc", b64url(b"\x00" * 32), b64url(b"\x01" * 31),
                "-----BEGIN PRIVATE KEY-----\nnope\n-----END PRIVATE KEY-----"):
        with pytest.raises(ValueError):
            vapid.load_key(bad)


def test_vapid_tokens_are_cached_per_origin_until_near_expiry():
    now = [1_000_000.0]
    signer = vapid.Vapid(vapid.load_key(vapid.generate()[0]), "mailto:a@example.com",
                         clock=lambda: now[0])
    first = signer.authorization("https://a.example")
    assert signer.authorization("https://a.example") == first
    assert signer.authorization("https://b.example") != first
    now[0] += vapid.LIFETIME - vapid.REFRESH_MARGIN + 1
    assert signer.authorization("https://a.example") != first
