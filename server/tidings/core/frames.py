"""WebSocket framing on the server side (RFC 6455), sans I/O: the opening handshake's
answer, the frames a server writes, and a reader that turns a client's bytes into messages.

Contracts:

- :func:`handshake_key` accepts only a complete version-13 upgrade request
  (``Upgrade: websocket``, ``Connection: upgrade``, a ``Sec-WebSocket-Key`` of
  16 bytes in base64); :func:`opening` is the 101 answer to it.
- Server frames are final, unmasked and uncompressed (no extension is ever
  agreed).
- :class:`FrameReader` takes the bytes as they arrive, split anywhere, and
  returns whole messages in order: a text or binary message once its last
  fragment is in (control frames may come between fragments), each ping, pong
  and close frame as it comes. What breaks the protocol raises
  :class:`FrameError` with the close code to answer: 1002 (an unmasked frame,
  a reserved bit, an unknown opcode, a continuation of nothing, a new message
  inside a fragmented one, a control frame that is fragmented or over 125
  bytes, a bad close frame), 1007 (a close reason that is not UTF-8), 1009 (a
  message over ``max_size`` bytes, refused from its header, before its payload
  is buffered). After a fault the reader reads nothing more. It holds at most
  one unfinished frame and one unfinished message, so its memory is bounded
  by ``max_size``.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import struct
from collections.abc import Callable
from typing import NamedTuple

CONTINUATION, TEXT, BINARY, CLOSE, PING, PONG = 0x0, 0x1, 0x2, 0x8, 0x9, 0xA

#: Close codes a peer may send (RFC 6455 section 7.4 and the IANA registry).
_SENDABLE = frozenset((1000, 1001, 1002, 1003, 1007, 1008, 1009, 1010, 1011, 1012, 1013, 1014))
_GUID = b"258EAFA5-E914-47DA-95CA-C5AB0DC85B11"
#: A control frame's payload (and so a close reason with its code) is at most 125 bytes.
MAX_CONTROL = 125

#: An empty ping (section 5.5.2).
PING_FRAME = b"\x89\x00"


class FrameError(ValueError):
    """The client broke the protocol; close the socket with ``code``."""

    def __init__(self, code: int, reason: str):
        super().__init__(reason)
        self.code = code
        self.reason = reason


class Message(NamedTuple):
    """A whole message (text or binary, fragments joined) or a control frame."""

    opcode: int
    data: bytes


# -- the opening handshake ----------------------------------------------------------

def handshake_key(method: str, header: Callable[[str], str | None]) -> str | None:
    """The ``Sec-WebSocket-Key`` of a valid upgrade request, else None.

    ``header(name)`` is the request's header of that name (case-insensitive), or None.
    """
    if method != "GET" or (header("Upgrade") or "").strip().lower() != "websocket":
        return None
    connection = (header("Connection") or "").lower()
    if connection != "upgrade" and "upgrade" not in map(str.strip, connection.split(",")):
        return None
    if (header("Sec-WebSocket-Version") or "").strip() != "13":
        return None
    key = (header("Sec-WebSocket-Key") or "").strip()
    try:
        if len(binascii.a2b_base64(key, strict_mode=True)) != 16:
            return None
    except binascii.Error:
        return None
    return key


def opening(key: str, subprotocol: str | None) -> bytes:
    """The 101 answer to an upgrade with ``key``, agreeing on ``subprotocol`` if given."""
    accept = base64.b64encode(hashlib.sha1(key.encode() + _GUID).digest())
    lines = [b"HTTP/1.1 101 Switching Protocols", b"Upgrade: websocket",
             b"Connection: Upgrade", b"Sec-WebSocket-Accept: " + accept]
    if subprotocol:
        lines.append(b"Sec-WebSocket-Protocol: " + subprotocol.encode())
    return b"\r\n".join(lines) + b"\r\n\r\n"


# -- frames out ------------------------------------------------------------------------

_HEAD = struct.Struct("!BB").pack
_HEAD16 = struct.Struct("!BBH").pack  # built once: a header is one call per frame
_HEAD64 = struct.Struct("!BBQ").pack


def _frame(first: int, payload: bytes) -> bytes:
    n = len(payload)
    if n < 126:
        return _HEAD(first, n) + payload
    if n < 65536:
        return _HEAD16(first, 126, n) + payload
    return _HEAD64(first, 127, n) + payload


def text_frame(payload: bytes) -> bytes:
    """A final, unmasked, uncompressed text frame (section 5.2) around ``payload``."""
    return _frame(0x80 | TEXT, payload)


def pong_frame(payload: bytes) -> bytes:
    """The answer to a ping with ``payload`` (at most 125 bytes: the reader checked)."""
    return _frame(0x80 | PONG, payload)


def close_frame(code: int | None, reason: str = "") -> bytes:
    """A close frame; the reason is cut to fit a control frame, on a character boundary."""
    if code is None:
        return _frame(0x80 | CLOSE, b"")
    text = reason.encode()[:MAX_CONTROL - 2].decode(errors="ignore").encode()
    return _frame(0x80 | CLOSE, code.to_bytes(2, "big") + text)


def close_code(payload: bytes) -> int | None:
    """The status code of a client's close frame (None: it gave none)."""
    if not payload:
        return None
    if len(payload) == 1:
        raise FrameError(1002, "a close frame of one byte")
    code = int.from_bytes(payload[:2], "big")
    if code not in _SENDABLE and not 3000 <= code <= 4999:
        raise FrameError(1002, f"close code {code} may not be sent")
    try:
        payload[2:].decode()
    except UnicodeDecodeError:
        raise FrameError(1007, "the close reason is not UTF-8") from None
    return code


# -- frames in ---------------------------------------------------------------------------

def unmask(mask: bytes, data: bytes) -> bytes:
    """``data`` XORed with the 4-byte ``mask`` repeated (section 5.3)."""
    n = len(data)
    if not n:
        return data
    key = int.from_bytes((mask * (n // 4 + 1))[:n], "big")
    return (int.from_bytes(data, "big") ^ key).to_bytes(n, "big")


class FrameReader:
    """A client's frames, read as they arrive: see the module's contracts."""

    __slots__ = ("_buf", "_kind", "_parts", "_size", "failed", "max_size")

    def __init__(self, max_size: int, buffered: bytes = b""):
        self.max_size = max_size
        self.failed = False  # a fault was raised: nothing more is read
        self._buf = buffered  # bytes of a frame not yet complete
        self._parts: list[bytes] | None = None  # fragments of an unfinished message
        self._kind = TEXT
        self._size = 0

    def feed(self, data: bytes) -> list[Message]:
        """The messages completed by ``data`` (and what was buffered), in order."""
        if self.failed:
            return []
        try:
            return self._feed(data)
        except FrameError:
            self.failed, self._buf, self._parts = True, b"", None
            raise

    def _feed(self, data: bytes) -> list[Message]:
        buf = self._buf + data if self._buf else data
        out: list[Message] = []
        pos, end = 0, len(buf)
        while end - pos >= 2:
            first, second = buf[pos], buf[pos + 1]
            length, head = second & 0x7F, 2
            if length == 126:
                if end - pos < 4:
                    break
                length, head = int.from_bytes(buf[pos + 2:pos + 4], "big"), 4
            elif length == 127:
                if end - pos < 10:
                    break
                length, head = int.from_bytes(buf[pos + 2:pos + 10], "big"), 10
            self._check(first, second, length)
            start = pos + head + 4
            if end < start + length:
                break
            payload = unmask(buf[start - 4:start], buf[start:start + length])
            pos = start + length
            message = self._take(first, payload)
            if message is not None:
                out.append(message)
        self._buf = buf[pos:] if pos < end else b""
        return out

    def _check(self, first: int, second: int, length: int) -> None:
        """Refuse a frame from its header, before its payload is waited for."""
        opcode = first & 0x0F
        if first & 0x70:
            raise FrameError(1002, "reserved bits are set (no extension was agreed)")
        if not second & 0x80:
            raise FrameError(1002, "client frames must be masked")
        if opcode >= CLOSE:
            if opcode not in (CLOSE, PING, PONG):
                raise FrameError(1002, f"unknown opcode {opcode}")
            if length > MAX_CONTROL or not first & 0x80:
                raise FrameError(1002, "control frames are whole and at most 125 bytes")
            return
        if opcode == CONTINUATION:
            if self._parts is None:
                raise FrameError(1002, "a continuation frame with no message to continue")
            size = self._size + length
        elif opcode in (TEXT, BINARY):
            if self._parts is not None:
                raise FrameError(1002, "a new message inside a fragmented one")
            size = length
        else:
            raise FrameError(1002, f"unknown opcode {opcode}")
        if size > self.max_size:
            raise FrameError(1009, f"message over {self.max_size} bytes")

    def _take(self, first: int, payload: bytes) -> Message | None:
        opcode, final = first & 0x0F, first & 0x80
        if opcode >= CLOSE:
            return Message(opcode, payload)
        if opcode != CONTINUATION:
            if final:
                return Message(opcode, payload)
            self._parts, self._kind, self._size = [payload], opcode, len(payload)
            return None
        assert self._parts is not None
        self._parts.append(payload)
        self._size += len(payload)
        if not final:
            return None
        message = Message(self._kind, b"".join(self._parts))
        self._parts, self._size = None, 0
        return message
