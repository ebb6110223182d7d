"""Web Push rules with no I/O (RFC 8030, 8291, 8292): subscriptions, endpoints, payloads, answers.

- A browser subscription is ``{"endpoint", "keys": {"p256dh", "auth"}}``:
  :func:`check_keys` accepts a P-256 public key (65 bytes, uncompressed, on the
  curve) and a 16-byte auth secret, both base64url (the device's token in the
  devices API is derived from the endpoint: :func:`tidings.core.ids.webpush_token`).
- **No server-side request forgery.** The endpoint is a URL a user sends, and
  the server posts to it. :class:`HostPolicy` holds what
  ``TIDINGS_WEBPUSH_ALLOWED_HOSTS`` allows: host names (``fcm.googleapis.com``,
  ``*.notify.windows.com``: any subdomain; ``*``: any name) and addresses
  (``127.0.0.1``, ``10.0.0.0/8``). :func:`check_endpoint` accepts only an
  ``https`` URL without user info whose host is an allowed name, or an address
  literal the setting lists; an address that is not global (private, loopback,
  link-local, shared, reserved, multicast) is never allowed unless listed.
  The send checks the endpoint again and every address its name resolves to
  (:meth:`HostPolicy.address_allowed`).
- :func:`webpush_payload` is the JSON the service worker gets, within
  :data:`WEBPUSH_MAX_BYTES` once encrypted (shortened as for APNs);
  :func:`webpush_headers` the ``TTL``, ``Urgency`` and ``Topic`` of a job;
  :func:`webpush_result` maps the push service's answer to a SendResult.
"""

from __future__ import annotations

import base64
import hashlib
import ipaddress
import re
import uuid
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlsplit

import msgspec

from . import errors
from .errors import ValidationError
from .push import DELIVERED, Outcome, PushJob, SendResult, collapse_id, fit

#: The browsers' push services: Chrome (FCM), Firefox (Mozilla), Edge (Windows), Safari (Apple).
KNOWN_HOSTS = ("fcm.googleapis.com", "*.push.services.mozilla.com", "*.notify.windows.com",
               "web.push.apple.com")
#: A push service must accept 4096 bytes of message body (RFC 8291 section 4); the aes128gcm
#: header (86 bytes), the padding delimiter (1) and the tag (16) leave this much for the JSON.
WEBPUSH_MAX_BYTES = 4096 - 86 - 1 - 16
DEFAULT_TTL = 28 * 24 * 3600  # seconds a push service keeps an undelivered message (RFC 8030 TTL)
URGENCY = "high"  # shown to the user at once, as the FCM webpush headers ask

IPAddress = ipaddress.IPv4Address | ipaddress.IPv6Address
IPNetwork = ipaddress.IPv4Network | ipaddress.IPv6Network

# The endpoint's shape, as regular expressions both Python and the API description (ECMA-262)
# read: https, a lower-case host name (its last label starts with a letter, so no number
# that inet_aton would take for an address) or an address literal, a port from 1 to 65535,
# then a path and query of RFC 3986 characters (no fragment, no user info).
_LABEL_RE = "[a-z0-9](?:[a-z0-9-]{0,61}[a-z0-9])?"
_NAME_RE = "(?:[a-z0-9](?:[a-z0-9-]{0,61}[a-z0-9])?\\.)*[a-z](?:[a-z0-9-]{0,61}[a-z0-9])?"
_ADDRESS_RE = "[0-9]{1,3}(?:\\.[0-9]{1,3}){3}|\\[[0-9a-f:.]+\\]"
_PORT_RE = ("(?:[1-9][0-9]{0,3}|[1-5][0-9]{4}|6[0-4][0-9]{3}|65[0-4][0-9]{2}|655[0-2][0-9]"
            "|6553[0-5])")
_PCHARS = "A-Za-z0-9._~!$&'()*+,;=:@%/-"
_PATH_RE = f"(?:/[{_PCHARS}]*)?(?:\\?[?{_PCHARS}]*)?"
P256DH_PATTERN = "^B[A-P][A-Za-z0-9_-]{84}[AEIMQUYcgkosw048]$"  # base64url of 0x04 || x || y
AUTH_PATTERN = "^[A-Za-z0-9_-]{21}[AQgw]$"  # base64url of 16 bytes
_NAME = re.compile(_NAME_RE)
_P256DH = re.compile(P256DH_PATTERN[1:-1])
_AUTH = re.compile(AUTH_PATTERN[1:-1])
_TOPIC = re.compile(r"[A-Za-z0-9_-]{1,32}")


def endpoint_pattern(names: Iterable[str] | None = None) -> str:
    """The endpoints' regular expression; with ``names`` (host patterns as the setting takes
    them), only those hosts: the API description states the default list."""
    if names is None:
        host = f"{_NAME_RE}|{_ADDRESS_RE}"
    else:
        host = "|".join(_NAME_RE if n == "*" else
                        f"(?:{_LABEL_RE}\\.)+{_escape(n[2:])}" if n.startswith("*.") else
                        _escape(n) for n in names)
    return f"^https://(?:{host})(?::{_PORT_RE})?{_PATH_RE}$"


def _escape(name: str) -> str:
    return name.replace(".", "\\.")  # host names hold only a-z 0-9 . -


_ENDPOINT = re.compile(endpoint_pattern()[1:-1])

# -- subscriptions --------------------------------------------------------------------------

def b64url(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def check_keys(p256dh: str, auth: str) -> None:
    """The subscription's keys as a browser gives them (base64url, no padding), else
    ValidationError. Whether the point is on the curve is checked when sending: a key that
    is not deactivates the device."""
    if not _P256DH.fullmatch(p256dh):
        raise errors.INVALID_SUBSCRIPTION_KEYS.error(
            "subscription.keys.p256dh must be the browser's P-256 public key: 65 bytes (an"
            " uncompressed point, 0x04 first), base64url without padding")
    if not _AUTH.fullmatch(auth):
        raise errors.INVALID_SUBSCRIPTION_KEYS.error(
            "subscription.keys.auth must be 16 bytes, base64url without padding")


# -- where the server may post --------------------------------------------------------------

_NAT64 = ipaddress.ip_network("64:ff9b::/96")


def embedded_ipv4(ip: IPAddress) -> ipaddress.IPv4Address | None:
    """The IPv4 address an IPv6 one carries and a network may translate it to: mapped
    (``::ffff:a.b.c.d``), NAT64 (``64:ff9b::/96``), 6to4 (``2002::/16``) or Teredo."""
    if not isinstance(ip, ipaddress.IPv6Address):
        return None
    if ip.ipv4_mapped is not None:
        return ip.ipv4_mapped
    if ip in _NAT64:
        return ipaddress.IPv4Address(int(ip) & 0xFFFFFFFF)
    if ip.sixtofour is not None:
        return ip.sixtofour
    if ip.teredo is not None:
        return ip.teredo[1]
    return None


def is_public(ip: IPAddress) -> bool:
    """A global unicast address; an IPv6 address carrying an IPv4 one (see
    :func:`embedded_ipv4`) is public only if that one is too."""
    inner = embedded_ipv4(ip)
    if inner is not None and not (inner.is_global and not inner.is_multicast):
        return False
    return ip.is_global and not ip.is_multicast


@dataclass(frozen=True)
class HostPolicy:
    """Which endpoint hosts and addresses the server may post to."""

    names: tuple[str, ...] = KNOWN_HOSTS  # exact, "*.suffix" or "*"
    networks: tuple[IPNetwork, ...] = ()  # listed addresses: allowed even when not public

    @classmethod
    def parse(cls, entries: Iterable[str]) -> HostPolicy:
        """The setting's entries; ValueError naming the first that is neither a host name
        pattern nor an address (``127.0.0.1``, ``::1``, ``10.0.0.0/8``)."""
        names: list[str] = []
        networks: list[IPNetwork] = []
        for raw in entries:
            entry = raw.strip().lower()
            try:
                networks.append(ipaddress.ip_network(entry.strip("[]"), strict=False))
                continue
            except ValueError:
                pass
            name = entry[2:] if entry.startswith("*.") else entry
            if entry != "*" and not _is_host_name(name):
                raise ValueError(f"{raw!r} is not a host name, *.domain, * or an address")
            names.append(entry)
        return cls(tuple(names), tuple(networks))

    def name_allowed(self, host: str) -> bool:
        for pattern in self.names:
            if pattern == "*" or pattern == host:
                return True
            if pattern.startswith("*.") and host.endswith(pattern[1:]):
                return True
        return False

    def listed(self, ip: IPAddress) -> bool:
        """Whether the setting lists ``ip`` (or the IPv4 address an IPv6 one maps)."""
        forms = [ip]
        if isinstance(ip, ipaddress.IPv6Address) and ip.ipv4_mapped is not None:
            forms.append(ip.ipv4_mapped)  # only a mapped address is that host itself
        return any(form in net for form in forms for net in self.networks)

    def address_allowed(self, ip: IPAddress) -> bool:
        """Whether the server may connect to ``ip``: a public address, or one listed."""
        return self.listed(ip) or is_public(ip)


def _is_host_name(host: str) -> bool:
    return _NAME.fullmatch(host) is not None


@dataclass(frozen=True, slots=True)
class Endpoint:
    host: str  # lower case, no trailing dot, no brackets
    origin: str  # scheme://host[:port]: the VAPID audience
    address: IPAddress | None  # the host, when it is an address literal


def _refuse(problem: str) -> ValidationError:
    return errors.ENDPOINT_NOT_ALLOWED.error(f"subscription.endpoint {problem}")


def check_endpoint(url: str, policy: HostPolicy) -> Endpoint:
    """``url`` as a Web Push endpoint the server may post to, else ValidationError
    (code ``endpoint_not_allowed``) saying why."""
    if not _ENDPOINT.fullmatch(url):
        raise _refuse("must be an https URL: a lower-case host name (or an address), a port"
                      " from 1 to 65535 if any, a path and query of URL characters, no user"
                      " name and no fragment")
    parts = urlsplit(url)
    host, port = parts.hostname or "", parts.port
    try:
        address: IPAddress | None = ipaddress.ip_address(host)
    except ValueError:
        address = None
    if address is not None:
        if not (policy.listed(address) or ("*" in policy.names and is_public(address))):
            raise _refuse(f"host {host} is an address that TIDINGS_WEBPUSH_ALLOWED_HOSTS does"
                          " not list")
    elif not _is_host_name(host):
        raise _refuse(f"host {host!r} is neither a host name nor an address")
    elif not policy.name_allowed(host):
        raise _refuse(f"host {host} is not a known push service (allowed: "
                      f"{', '.join(policy.names) or 'none'}; see TIDINGS_WEBPUSH_ALLOWED_HOSTS)")
    shown = f"[{host}]" if isinstance(address, ipaddress.IPv6Address) else host
    origin = f"https://{shown}" + (f":{port}" if port not in (None, 443) else "")
    return Endpoint(host, origin, address)


# -- what is sent ----------------------------------------------------------------------------

def webpush_size(payload: dict[str, Any]) -> int:
    return len(msgspec.json.encode(payload))


def webpush_payload(job: PushJob, limit: int = WEBPUSH_MAX_BYTES) -> dict[str, Any]:
    """The JSON the service worker receives: ``title``, ``body``, ``uid``, ``seq``,
    ``type``, ``tag`` (the collapse id), ``badge`` and ``sound`` when set, ``data``, and
    the ``push.extra`` keys (the payload's own keys win). Shortened to fit ``limit``."""
    push = job.push

    def build(body: str, title: str | None, with_data: bool) -> dict[str, Any]:
        out: dict[str, Any] = dict(push.extra or {}) if with_data else {}
        if with_data and job.data is not None:
            out["data"] = job.data
        out.update(uid=job.uid, seq=job.seq, type=job.type, title=title, body=body,
                   tag=collapse_id(job))
        if push.badge is not None:
            out["badge"] = push.badge
        if push.sound:
            out["sound"] = push.sound
        return out

    return fit(build, job.message, job.title, limit, webpush_size)


def topic(collapse: str) -> str:
    """An RFC 8030 ``Topic`` (1 to 32 base64url characters) for a collapse id: itself when it
    is one, a uid's 32 hex digits, else 32 characters of its SHA-256."""
    if _TOPIC.fullmatch(collapse):
        return collapse
    try:
        return uuid.UUID(collapse).hex
    except ValueError:
        return b64url(hashlib.sha256(collapse.encode()).digest())[:32]


def webpush_headers(job: PushJob) -> dict[str, str]:
    """``TTL`` (``push.ttl``, else 28 days), ``Urgency`` and ``Topic`` (the collapse id)."""
    ttl = job.push.ttl if job.push.ttl is not None else DEFAULT_TTL
    return {"TTL": str(ttl), "Urgency": URGENCY, "Topic": topic(collapse_id(job))}


def webpush_result(status: int, answer: str = "",
                   retry_after: float | None = None) -> SendResult:
    """A push service's answer: 2xx delivered; 404 and 410 the subscription is gone; 429
    and 5xx retry (after ``retry_after``); anything else fails this message."""
    if 200 <= status < 300:
        return DELIVERED
    said = " ".join(answer.split())[:200]
    detail = f"{status} {said}".strip()
    if status in (404, 410):
        return SendResult(Outcome.INVALID_TOKEN, detail)
    if status == 429 or status >= 500:
        return SendResult(Outcome.RETRY, detail, retry_after)
    return SendResult(Outcome.FAILED, detail)
