"""E-mail messages as bytes, with no I/O: the :class:`Email` to send and its MIME rendering.

- :class:`Email` is one message for one recipient: the address, subject, text
  (and optional HTML) body, the URLs for ``List-Unsubscribe``, and a
  ``reference`` naming what the message is (a notification uid, a digest id):
  its ``Message-ID`` is made from it, so every attempt at one message carries
  the same id and a receiver can drop a repeat.
- :func:`check_address` is the one rule for an address: ASCII ``local@domain``
  (dot-atom local part; the domain may be Unicode and is IDNA-encoded), at most
  254 characters. Anything else is a :class:`BadAddress`, never a message.
- :func:`build_message` renders a message (``multipart/alternative`` when there
  is HTML). Header values cannot carry a header of their own: every control
  character (CR and LF included, and the Unicode line breaks) becomes a space
  and encoded-word syntax is broken up (:func:`header_text`), addresses pass
  :func:`check_address`, and the headers that carry outside text are written
  here (:func:`mailbox`, :func:`unstructured`), not folded by the stdlib, which
  loses the quotes of a long quoted name and spaces between encoded words.
  With an unsubscribe URL, a preferences URL or both it adds
  ``List-Unsubscribe`` (``<unsubscribe>, <preferences>``, one URL a line) and,
  for an https unsubscribe URL that takes a one-click POST (``one_click``),
  ``List-Unsubscribe-Post: List-Unsubscribe=One-Click`` (RFC 8058); characters a
  URL may not hold are percent-encoded, so a URL cannot leave its ``<...>``.
  Bodies are quoted-printable (7-bit, short lines) and the multipart boundary
  comes from the content, so one ``Email`` and ``now`` give the same bytes.
- :func:`console_text` is what the console mailer prints: one JSON line.

The clock is passed in (``now``, seconds since the epoch, for the ``Date`` header).
"""

from __future__ import annotations

import base64
import hashlib
import json
import re
from dataclasses import dataclass, field
from email.message import EmailMessage
from email.policy import EmailPolicy
from email.utils import formatdate
from urllib.parse import quote

MAX_ADDRESS = 254  # RFC 5321's path limit, less the angle brackets
MAX_LOCAL = 64
MAX_REFERENCE = 64  # longer references are hashed into the Message-ID
MAX_URL = 900  # List-Unsubscribe is one line, within SMTP's 998
MAX_NAME = 200  # characters of a display name; the rest is cut
_WORD_BYTES = 39  # UTF-8 bytes per encoded word: 52 base64 characters, 64 with the markers
_FOLD_AT = 76  # characters of a header line before CRLF, leaving room for a folding space

_ATEXT = r"[A-Za-z0-9!#$%&'*+/=?^_`{|}~-]+"
_DOT_ATOM = re.compile(rf"{_ATEXT}(?:\.{_ATEXT})*")
_LABEL = re.compile(r"[A-Za-z0-9](?:[A-Za-z0-9-]{0,61}[A-Za-z0-9])?")
_CONTROL = re.compile(r"[\x00-\x1f\x7f-\x9f\u2028\u2029]")
_SPACES = re.compile(r"\s+")
_PLAIN_PHRASE = re.compile(rf"{_ATEXT}(?: {_ATEXT})*")
_SENDER = re.compile(r'(?:(?P<name>[^<>@]*)<(?P<angled>[^<>\s]+)>|(?P<bare>[^<>\s"]+))')
# RFC 3986's unreserved and reserved characters, and % for escapes already made.
_URL_SAFE = "-._~:/?#[]@!$&'()*+,;=%"


class BadAddress(ValueError):
    """An address that cannot be sent to; the message completes "the address ..."."""


@dataclass(frozen=True, slots=True)
class Email:
    """One e-mail to one recipient.

    ``reference`` names what is sent (the same on every attempt);
    ``attempt`` counts sends of it (1 the first), so a retry's delay grows.
    """

    to: str
    subject: str
    text: str
    reference: str
    html: str | None = field(default=None, kw_only=True)
    unsubscribe_url: str | None = field(default=None, kw_only=True)
    one_click: bool = field(default=True, kw_only=True)  # the URL unsubscribes on a POST
    preferences_url: str | None = field(default=None, kw_only=True)  # a page, listed second
    to_name: str | None = field(default=None, kw_only=True)
    attempt: int = field(default=1, kw_only=True)


@dataclass(frozen=True, slots=True)
class Sender:
    """The ``From`` of every message: an address that passed :func:`check_address`."""

    address: str
    name: str | None = None

    @property
    def domain(self) -> str:
        return self.address.rpartition("@")[2]


def check_address(text: str) -> str:
    """``text`` as an ASCII ``local@domain`` address (the domain lower-cased); raises
    :class:`BadAddress` saying what is wrong."""
    if not isinstance(text, str) or not text:
        raise BadAddress("is not an e-mail address")
    local, at, domain = text.rpartition("@")
    if not at or not local or not domain:
        raise BadAddress("is not an e-mail address (local@domain)")
    if len(local) > MAX_LOCAL or not _DOT_ATOM.fullmatch(local):
        raise BadAddress("has a local part that cannot be sent (ASCII letters, digits, dots"
                         " and !#$%&'*+/=?^_`{|}~- only, at most 64)")
    try:
        ascii_domain = domain.encode("idna").decode("ascii")
    except UnicodeError:
        raise BadAddress("has a domain that is not a host name") from None
    labels = ascii_domain.split(".")
    if not all(_LABEL.fullmatch(label) for label in labels):
        raise BadAddress("has a domain that is not a host name")
    address = f"{local}@{ascii_domain.lower()}"
    if len(address) > MAX_ADDRESS:
        raise BadAddress(f"is longer than {MAX_ADDRESS} characters")
    return address


def parse_sender(text: str) -> Sender:
    """A ``From`` setting (``noreply@example.com`` or ``Example <noreply@example.com>``)."""
    match = _SENDER.fullmatch(text.strip())
    if match is None:
        raise ValueError("is not one e-mail address (Name <local@domain> or local@domain)")
    name = (match["name"] or "").strip()
    if len(name) >= 2 and name[0] == name[-1] == '"':
        name = name[1:-1]
    return Sender(check_address(match["angled"] or match["bare"]), header_text(name) or None)


def header_text(value: str) -> str:
    """``value`` fit for a header: control characters and whitespace runs become one space,
    and ``=?`` becomes ``= ?``: the stdlib decodes RFC 2047 encoded words in what it is
    given, so ``=?utf-8?q?a=2C_eve=40evil=2Ecom?=`` in a name would add a recipient."""
    text = _SPACES.sub(" ", _CONTROL.sub(" ", _utf8(value))).strip()
    while "=?" in text:
        text = text.replace("=?", "= ?")
    return text


def _utf8(text: str) -> str:
    """``text`` with any lone surrogate (which UTF-8 cannot carry) as ``?``."""
    return text.encode("utf-8", "replace").decode("utf-8")


def message_id(reference: str, domain: str) -> str:
    """``<reference@domain>``; a reference that is no short dot-atom is hashed first."""
    if len(reference) > MAX_REFERENCE or not _DOT_ATOM.fullmatch(reference):
        digest = hashlib.sha256(reference.encode("utf-8", "surrogatepass")).hexdigest()
        reference = "h" + digest[:40]
    return f"<{reference}@{domain}>"


def safe_url(url: str) -> str:
    """``url`` with every character a URL may not hold (spaces, ``<>"``, controls,
    non-ASCII) percent-encoded."""
    return quote(url, safe=_URL_SAFE, errors="surrogatepass")


def _body(text: str) -> str:
    return _utf8(text).replace("\r\n", "\n").replace("\r", "\n")


class _Policy(EmailPolicy):
    """The SMTP policy (CRLF, lines folded at 78), except for the headers this module
    writes itself (:data:`_AS_WRITTEN`): they are stored and sent as given. The stdlib's
    folder drops the quotes of a long quoted display name (``"a, eve@evil.com"`` becomes
    two recipients), loses spaces between encoded words, and turns a long URL into an
    RFC 2047 encoded word no client reads."""

    def header_store_parse(self, name: str, value: str) -> tuple[str, str]:
        if name.lower() in _AS_WRITTEN:
            return name, value
        return super().header_store_parse(name, value)

    def fold(self, name: str, value: str) -> str:
        if name.lower() in _AS_WRITTEN:
            return f"{name}: {value}{self.linesep}"
        return super().fold(name, value)

    def fold_binary(self, name: str, value: str) -> bytes:
        if name.lower() in _AS_WRITTEN:
            return self.fold(name, value).encode("ascii")
        return super().fold_binary(name, value)


_AS_WRITTEN = {"from", "to", "subject", "message-id", "list-unsubscribe"}
POLICY = _Policy(linesep="\r\n")


def mailbox(name: str | None, address: str) -> str:
    """An address header's value as sent: ``address`` alone, or ``name <address>`` with the
    name (:func:`header_text`, at most :data:`MAX_NAME` characters) as plain words, a
    quoted string (other printable ASCII) or base64 encoded words (RFC 2047) one per
    folded line; ``address`` has passed :func:`check_address`."""
    name = header_text(name or "")[:MAX_NAME].rstrip()
    if not name:
        return address
    if _PLAIN_PHRASE.fullmatch(name):
        return f"{name} <{address}>"
    if name.isascii():
        quoted = name.replace("\\", "\\\\").replace('"', '\\"')
        return f'"{quoted}" <{address}>'
    return "\r\n ".join([*_encoded_words(name), f"<{address}>"])


def unstructured(text: str, name: str) -> str:
    """A text header's value as sent (``text`` has passed :func:`header_text`): folded at
    spaces when it is ASCII, else (or with a word too long for a line) base64 encoded
    words, one per folded line, which keep every character and space exactly."""
    if text.isascii() and all(len(word) <= _FOLD_AT for word in text.split(" ")):
        lines = [""]
        for word in text.split(" "):
            width = len(name) + 2 if len(lines) == 1 else 0
            if lines[-1] and width + len(lines[-1]) + 1 + len(word) > _FOLD_AT:
                lines.append(word)
            else:
                lines[-1] = f"{lines[-1]} {word}" if lines[-1] else word
        return "\r\n ".join(lines)
    return "\r\n ".join(_encoded_words(text))


def _encoded_words(text: str) -> list[str]:
    """``text`` as ``=?utf-8?b?...?=`` words of at most 64 characters, cut between
    characters."""
    chunks: list[bytes] = [b""]
    for ch in text:
        raw = ch.encode("utf-8")
        if len(chunks[-1]) + len(raw) > _WORD_BYTES:
            chunks.append(b"")
        chunks[-1] += raw
    return [f"=?utf-8?b?{base64.b64encode(c).decode('ascii')}?=" for c in chunks]


def build_message(email: Email, sender: Sender, now: float) -> EmailMessage:
    """The message for ``email``; raises :class:`BadAddress` when its address cannot be
    sent to, and ValueError for an unsubscribe or preferences URL over :data:`MAX_URL` (a
    caller's bug)."""
    to = check_address(email.to)
    msg = EmailMessage(policy=POLICY)
    msg["From"] = mailbox(sender.name, sender.address)
    msg["To"] = mailbox(email.to_name, to)
    msg["Subject"] = unstructured(header_text(email.subject), "Subject")
    msg["Date"] = formatdate(now, usegmt=True)
    msg["Message-ID"] = message_id(email.reference, sender.domain)
    msg["Auto-Submitted"] = "auto-generated"  # RFC 3834: no vacation replies to it
    urls = [safe_url(u) for u in (email.unsubscribe_url, email.preferences_url) if u]
    if any(len(url) > MAX_URL for url in urls):
        raise ValueError(f"an unsubscribe or preferences URL is over {MAX_URL} characters")
    if urls:
        msg["List-Unsubscribe"] = ",\r\n ".join(f"<{url}>" for url in urls)
    if (email.unsubscribe_url and email.one_click
            and urls[0].lower().startswith("https://")):
        msg["List-Unsubscribe-Post"] = "List-Unsubscribe=One-Click"
    msg.set_content(_body(email.text), subtype="plain", charset="utf-8",
                    cte="quoted-printable")
    if email.html is not None:
        msg.add_alternative(_body(email.html), subtype="html", charset="utf-8",
                            cte="quoted-printable")
        msg.set_boundary(_boundary(email))
    return msg


def _boundary(email: Email) -> str:
    """A boundary from the content (the stdlib's is random). It starts with ``=_``, which
    a quoted-printable body cannot hold (``=`` is written ``=3D``)."""
    digest = hashlib.sha256()
    for part in (email.text, email.html or ""):
        digest.update(part.encode("utf-8", "surrogatepass") + b"\0")
    return "=_" + digest.hexdigest()[:32]


def message_bytes(msg: EmailMessage) -> bytes:
    """The message as sent after DATA: CRLF line ends, 7-bit, lines folded at 78 characters
    where they have spaces and never over 998."""
    return msg.as_bytes(policy=POLICY)


def console_text(email: Email, sender: Sender, now: float) -> str:
    """What the console mailer prints for ``email``: one JSON line with the headers and
    bodies of the message that SMTP would carry."""
    msg = build_message(email, sender, now)
    headers = {name: str(value) for name, value in msg.items()
               if name.lower() not in ("content-type", "content-transfer-encoding",
                                       "mime-version")}
    html = _body(email.html) if email.html is not None else None
    return json.dumps({"channel": "email", "headers": headers, "text": _body(email.text),
                       "html": html}, ensure_ascii=False, separators=(",", ":"))
