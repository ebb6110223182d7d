"""Request bodies and query strings into typed values: anything else is a coded 400.

Every request body and query string passes through :func:`decode_body` or
:func:`convert_query` before a handler sees it, so handlers only meet valid,
typed values of :mod:`.requests`, within the limits of :mod:`.jsonvalues`.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from typing import TypeVar

import msgspec

from . import errors
from .errors import TooLarge, ValidationError
from .jsonvalues import check_value, plainly_within, too_deep, whole_numbers
from .requests import MAX_BODY_BYTES, BatchRequest

T = TypeVar("T")

#: Bodies up to this many bytes are judged by their text (:func:`plainly_within`, a few
#: microseconds for a single publish); larger ones are walked, which is then quicker
#: (a 10,000-recipient body: 0.7 ms walked, 2.6 ms scanned).
PLAIN_TEXT_MAX = 2048


def _message(exc: msgspec.ValidationError | msgspec.DecodeError) -> str:
    return str(exc).replace("`", "'")


@contextmanager
def _decoding(body: bytes) -> Iterator[None]:
    """Refuse an oversized or empty body; within the block, decoding errors become 400s."""
    if len(body) > MAX_BODY_BYTES:
        raise TooLarge(f"request body is over {MAX_BODY_BYTES} bytes")
    if not body.strip():
        raise errors.INVALID_JSON.error("request body is empty; a JSON object is required")
    try:
        yield
    except msgspec.ValidationError as exc:
        raise ValidationError(_message(exc)) from None
    except msgspec.DecodeError as exc:
        raise errors.INVALID_JSON.error(f"malformed JSON: {_message(exc)}") from None
    except RecursionError:
        raise too_deep() from None


def decode_body(body: bytes, kind: type[T]) -> T:
    """Decode and validate a JSON body, or raise ValidationError / TooLarge.

    Codes: ``invalid_json`` (not JSON, empty), ``invalid_request`` (JSON that
    breaks the schema), ``too_deep``, ``number_out_of_range`` and
    ``nul_character`` (see :mod:`.jsonvalues`); never another exception.
    """
    with _decoding(body):
        try:
            value = msgspec.json.decode(body, type=kind)
        except msgspec.ValidationError as exc:
            if "got `float`" not in str(exc):
                raise
            # JSON has one number type: 2.0 is the integer 2, as JSON Schema reads it.
            value = msgspec.convert(whole_numbers(msgspec.json.decode(body)), type=kind)
        if len(body) <= PLAIN_TEXT_MAX and plainly_within(body):  # no walk needed
            return value
        plain = msgspec.to_builtins(value)
    check_value(plain)
    return value


def decode_batch(body: bytes) -> list[bytes]:
    """The members of a batch publish body, each the exact JSON text of one object, in order.

    Only the envelope is checked here (``{"notifications": [objects]}``, 1 to
    :data:`MAX_BATCH` of them); each member is for :func:`decode_body` to judge.
    Raises what :func:`decode_body` raises for a bad envelope.
    """
    with _decoding(body):
        batch = msgspec.json.decode(body, type=BatchRequest)
    members = [bytes(raw) for raw in batch.notifications]
    for i, member in enumerate(members):
        if not member.startswith(b"{"):
            raise ValidationError(f"Expected `object`, got another JSON value - at"
                                  f" `$.notifications[{i}]`".replace("`", "'"))
    return members


def convert_query(pairs: Iterable[tuple[str, str]], kind: type[T]) -> T:
    """Validate query-string pairs into a typed struct, or raise ValidationError.

    A parameter of ``kind`` given twice is refused (which one would win is a
    guess); others are ignored. No value means null: ``before=null`` is a 400.
    """
    known = set(kind.__struct_fields__)  # type: ignore[attr-defined]
    query: dict[str, str] = {}
    for key, value in pairs:
        if key in known and key in query:
            raise ValidationError(f"query parameter {key!r} is given more than once")
        query.setdefault(key, value)
    try:
        return msgspec.convert(query, type=kind, strict=False)
    except msgspec.ValidationError as exc:
        raise ValidationError(_message(exc)) from None
