"""Limits on decoded JSON values that a schema cannot state: nesting depth, number range, NUL.

Free-form fields (``data``, ``changed_data``, ``custom_info``, ``push.extra``)
hold any JSON; what is stored must also encode again (orjson encodes integers
of at most 64 bits and nests at most 254 levels) and fit PostgreSQL (no NUL
in text or jsonb). :func:`check_value` walks a decoded body once and raises
:class:`~tidings.core.errors.ValidationError` with a stable code on the first
breach, so nothing that passes can fail later in encoding or storage.
:func:`plainly_within` tells from a JSON text alone, without decoding it, that
every value in it is within the limits (so the walk can be skipped).
"""

from __future__ import annotations

import re
from typing import Any

from . import errors
from .errors import ValidationError

#: Levels of objects and arrays in a whole request body (the body object is level 1).
MAX_DEPTH = 32
#: Numbers anywhere in a body: the signed 64-bit range (integers encode in 64 bits).
MIN_INT = -(2**63)
MAX_INT = 2**63 - 1


#: Text that may hold a number out of range: 19 digits in a row, or an exponent.
_MAYBE_LARGE = re.compile(rb"[0-9]{19}|[0-9][eE]")


def plainly_within(text: bytes) -> bool:
    """True only if every value of the JSON ``text`` is within :func:`check_value`'s
    limits, judged from the text alone: no ``\\u0000`` escape (JSON has no other way
    to hold a NUL), at most :data:`MAX_DEPTH` ``{`` and ``[`` in all, and no number of
    19 digits or with an exponent (one of at most 18 digits and no exponent is below
    10**18). False means "walk it": strings may hold such text harmlessly."""
    return (b"\\u0000" not in text
            and text.count(b"{") + text.count(b"[") <= MAX_DEPTH
            and _MAYBE_LARGE.search(text) is None)


def too_deep() -> ValidationError:
    return errors.TOO_DEEP.error(
        f"JSON nests more than {MAX_DEPTH} levels of objects and arrays")


def check_value(value: Any, depth: int = 1) -> None:
    """Raise ValidationError unless ``value`` (decoded JSON) is within every limit.

    Codes: ``too_deep`` (more than :data:`MAX_DEPTH` levels), ``number_out_of_range``
    (outside :data:`MIN_INT`..:data:`MAX_INT`), ``nul_character`` (a NUL in a string or key).
    """
    if isinstance(value, str):
        if "\x00" in value:
            raise _nul()
        return
    if isinstance(value, bool) or value is None:
        return
    if isinstance(value, int | float):
        if not MIN_INT <= value <= MAX_INT:
            raise errors.NUMBER_OUT_OF_RANGE.error(
                f"numbers must be within {MIN_INT}..{MAX_INT} (64-bit)")
        return
    if depth > MAX_DEPTH:
        raise too_deep()
    if isinstance(value, dict):
        for key, item in value.items():
            if "\x00" in key:
                raise _nul()
            check_value(item, depth + 1)
    elif isinstance(value, list | tuple):
        for item in value:
            check_value(item, depth + 1)


def _nul() -> ValidationError:
    return errors.NUL_CHARACTER.error("text may not contain NUL (\\u0000) characters")


def whole_numbers(value: Any) -> Any:
    """``value`` with every float that is a whole number (``2.0``) made an int."""
    if isinstance(value, float):
        return int(value) if value.is_integer() else value
    if isinstance(value, dict):
        return {k: whole_numbers(v) for k, v in value.items()}
    if isinstance(value, list):
        return [whole_numbers(v) for v in value]
    return value
