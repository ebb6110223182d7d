"""WebSocket framing (RFC 6455): the opening answer, server frames, and the frame reader
fed client bytes split anywhere, with fragments, control frames between them, and faults."""

from __future__ import annotations

import base64
import hashlib
import os

import pytest
from hypothesis import given
from hypothesis import strategies as st

from tidings.core import frames
from tidings.core.frames import BINARY, PING, PONG, TEXT, FrameError, FrameReader, Message


def client_frame(opcode: int, payload: bytes, *, fin: bool = True, mask: bytes | None = None,
                 wide: int = 0, rsv: int = 0) -> bytes:
    """A client frame as a browser would send it; ``wide`` forces a 16 or 64-bit length."""
    mask = os.urandom(4) if mask is None else mask
    n = len(payload)
    first = (0x80 if fin else 0) | rsv | opcode
    if n < 126 and not wide:
        head = bytes((first, 0x80 | n))
    elif n < 65536 and wide != 64:
        head = bytes((first, 0x80 | 126)) + n.to_bytes(2, "big")
    else:
        head = bytes((first, 0x80 | 127)) + n.to_bytes(8, "big")
    masked = bytes(b ^ mask[i % 4] for i, b in enumerate(payload))
    return head + mask + masked


def split(data: bytes, cuts: list[int]) -> list[bytes]:
    points = sorted({c % (len(data) + 1) for c in cuts})
    return [data[a:b] for a, b in zip([0, *points], [*points, len(data)], strict=True)]


message = st.tuples(st.sampled_from([TEXT, BINARY]), st.binary(max_size=300),
                    st.integers(1, 4), st.sampled_from([0, 16, 64]))
control = st.tuples(st.sampled_from([PING, PONG]), st.binary(max_size=125))


@given(st.lists(st.tuples(message, st.lists(control, max_size=2)), max_size=8),
       st.lists(st.integers(0, 10**6), max_size=12))
def test_messages_come_out_whole_and_in_order_however_the_bytes_are_split(items, cuts):
    stream, expected = b"", []
    for (opcode, payload, pieces, wide), controls in items:
        size = -(-len(payload) // pieces) or 1
        parts = [payload[i:i + size] for i in range(0, len(payload), size)] or [b""]
        whole = Message(opcode, payload)
        for i, part in enumerate(parts):
            stream += client_frame(opcode if i == 0 else frames.CONTINUATION, part,
                                   fin=i == len(parts) - 1, wide=wide)
            if i == 0:  # control frames after the first fragment: inside the message
                if len(parts) == 1:
                    expected.append(whole)
                for c_op, c_payload in controls:
                    stream += client_frame(c_op, c_payload)
                    expected.append(Message(c_op, c_payload))
        if len(parts) > 1:
            expected.append(whole)
    reader = FrameReader(max_size=300)
    assert [m for chunk in split(stream, cuts) for m in reader.feed(chunk)] == expected
    assert reader.feed(b"") == []


@given(st.binary(max_size=2000), st.binary(min_size=4, max_size=4))
def test_unmask_is_the_xor_of_section_5_3(data, mask):
    assert frames.unmask(mask, data) == bytes(b ^ mask[i % 4] for i, b in enumerate(data))


@pytest.mark.parametrize(("stream", "code"), [
    (client_frame(TEXT, b"hi")[:1] + bytes((2,)) + b"hi", 1002),  # unmasked
    (client_frame(TEXT, b"hi", rsv=0x40), 1002),  # compressed, never agreed
    (client_frame(0x3, b"?"), 1002),  # reserved data opcode
    (client_frame(0xB, b"?"), 1002),  # reserved control opcode
    (client_frame(PING, b"x" * 126, wide=16), 1002),  # control frame over 125 bytes
    (client_frame(PING, b"x", fin=False), 1002),  # fragmented control frame
    (client_frame(frames.CONTINUATION, b"x"), 1002),  # continues nothing
    (client_frame(TEXT, b"a", fin=False) + client_frame(TEXT, b"b"), 1002),
    (client_frame(TEXT, b"x" * 101), 1009),
    (client_frame(TEXT, b"x" * 60, fin=False) + client_frame(0, b"x" * 60), 1009),
])
def test_protocol_faults_have_their_close_code(stream, code):
    reader = FrameReader(max_size=100)
    with pytest.raises(FrameError) as fault:
        reader.feed(stream)
    assert fault.value.code == code
    assert reader.feed(client_frame(TEXT, b"after")) == [], "nothing is read after a fault"


def test_an_oversized_frame_is_refused_from_its_header_before_its_payload_waits():
    head = client_frame(BINARY, b"x" * 70_000)[:14]  # length and mask, no payload yet
    with pytest.raises(FrameError) as fault:
        FrameReader(max_size=65_536).feed(head)
    assert fault.value.code == 1009


@pytest.mark.parametrize(("payload", "result"), [
    (b"", None), (b"\x03\xe8", 1000), (b"\x0f\xa0bye", 4000), (b"\x0b\xb8", 3000),
    (b"\x03", 1002), (b"\x03\xe7", 1002), (b"\x03\xed", 1002), (b"\x03\xee", 1002),
    (b"\x03\xf7", 1002), (b"\x13\x88", 1002), (b"\x03\xe8\xff", 1007),
])
def test_close_codes_a_peer_may_send(payload, result):
    if result in (1002, 1007):
        with pytest.raises(FrameError) as fault:
            frames.close_code(payload)
        assert fault.value.code == result
    else:
        assert frames.close_code(payload) == result


def test_server_frames_are_final_unmasked_and_sized_by_the_shortest_length():
    for n, head in ((0, b"\x81\x00"), (125, b"\x81\x7d"), (126, b"\x81\x7e\x00\x7e"),
                    (65535, b"\x81\x7e\xff\xff"),
                    (65536, b"\x81\x7f\x00\x00\x00\x00\x00\x01\x00\x00")):
        frame = frames.text_frame(b"x" * n)
        assert frame[:len(head)] == head and len(frame) == len(head) + n
    assert frames.pong_frame(b"hey") == b"\x8a\x03hey"
    assert frames.close_frame(None) == b"\x88\x00"
    assert frames.close_frame(4001, "token expired") == b"\x88\x0f\x0f\xa1token expired"
    long = frames.close_frame(1008, "\u00e9" * 100)  # cut to 123 bytes on a character
    assert len(long) == 2 + 2 + 122 and long[4:].decode() == "\u00e9" * 61


def _headers(**values: str):
    return lambda name: values.get(name.replace("-", "_").lower())


GOOD = {"upgrade": "websocket", "connection": "keep-alive, Upgrade",
        "sec_websocket_version": "13", "sec_websocket_key": "dGhlIHNhbXBsZSBub25jZQ=="}


def test_the_opening_answer_of_rfc_6455_section_1_3():
    key = frames.handshake_key("GET", _headers(**GOOD))
    assert key == "dGhlIHNhbXBsZSBub25jZQ=="
    answer = frames.opening(key, None)
    assert answer.startswith(b"HTTP/1.1 101 Switching Protocols\r\n")
    assert b"\r\nSec-WebSocket-Accept: s3pPLMBiTxaQ9kYGzzhZRbK+xOo=\r\n" in answer
    assert answer.endswith(b"\r\n\r\n") and b"Sec-WebSocket-Protocol" not in answer
    assert b"\r\nSec-WebSocket-Protocol: a.b.c\r\n" in frames.opening(key, "a.b.c")


@pytest.mark.parametrize("change", [
    {"upgrade": "h2c"}, {"upgrade": None}, {"connection": "keep-alive"},
    {"sec_websocket_version": "8"}, {"sec_websocket_key": None},
    {"sec_websocket_key": base64.b64encode(b"x" * 15).decode()},
    {"sec_websocket_key": "not base64!"},
])
def test_what_is_no_upgrade(change):
    values = {k: v for k, v in {**GOOD, **change}.items() if v is not None}
    assert frames.handshake_key("GET", _headers(**values)) is None
    assert frames.handshake_key("POST", _headers(**GOOD)) is None


@given(st.binary(min_size=16, max_size=16))
def test_any_16_byte_key_is_answered_by_its_sha1(raw):
    key = base64.b64encode(raw).decode()
    assert frames.handshake_key("GET", _headers(**{**GOOD, "sec_websocket_key": key})) == key
    accept = base64.b64encode(hashlib.sha1(
        key.encode() + b"258EAFA5-E914-47DA-95CA-C5AB0DC85B11").digest())
    assert b"Sec-WebSocket-Accept: " + accept + b"\r\n" in frames.opening(key, None)
