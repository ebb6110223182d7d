"""IPv6 forms that carry an IPv4 address: the NAT64 prefix (64:ff9b::/96, RFC 6052) and
6to4 (2002::/16, RFC 3056) reach the embedded IPv4 address on networks that translate
them, so they are judged as that address, as IPv4-mapped ones are."""

from __future__ import annotations

import ipaddress

import pytest

from tidings.core.webpush import HostPolicy, is_public


@pytest.mark.parametrize("address", ["64:ff9b::a00:1", "64:ff9b::7f00:1",
                                     "2002:a00:1::1", "2002:a9fe:a9fe::1"])
def test_an_ipv6_form_of_a_private_ipv4_address_is_not_public(address):
    assert not is_public(ipaddress.ip_address(address))
    assert not HostPolicy(("*",), ()).address_allowed(ipaddress.ip_address(address))
