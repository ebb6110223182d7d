"""How each setting's text is read: a parser, a metavar for the help, the accepted values.

What may live here: the value kinds of :mod:`tidings.config`'s settings table.
A parser raises ``ValueError`` whose message completes "'<the text>': ..." in
the project's words (``must be a port number from 0 to 65535``).
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any


@dataclass(frozen=True)
class Kind:
    """How one setting's text is read: its parser, its help metavar and accepted values."""

    parse: Callable[[str], Any]
    metavar: str
    choices: tuple[str, ...] = ()


def _bool(text: str) -> bool:
    low = text.strip().lower()
    if low in ("1", "true", "yes", "on"):
        return True
    if low in ("0", "false", "no", "off", ""):
        return False
    raise ValueError("must be true or false")


def read_list(text: str) -> tuple[str, ...]:
    return tuple(part.strip() for part in text.split(",") if part.strip())


def _int(text: str, low: int, high: int | None, what: str) -> int:
    try:
        value = int(text.strip())
    except ValueError:
        raise ValueError(f"must be {what}") from None
    if value < low or (high is not None and value > high):
        raise ValueError(f"must be {what}")
    return value


def _positive_int(text: str) -> int:
    return _int(text, 1, None, "a whole number, 1 or more")


def read_port(text: str) -> int:
    return _int(text, 0, 65535, "a port number from 0 to 65535")


def _number(text: str, what: str, *, positive: bool) -> float:
    try:
        value = float(text.strip())
    except ValueError:
        raise ValueError(f"must be {what}") from None
    if not math.isfinite(value) or value < 0 or (positive and value == 0):
        raise ValueError(f"must be {what}")
    return value


def _seconds(text: str) -> float:
    return _number(text, "a positive number of seconds", positive=True)


def read_rate(text: str) -> float:
    return _number(text, "0 (off) or a positive rate", positive=False)


def read_leeway(text: str) -> float:
    return _number(text, "0 or a positive number of seconds", positive=False)


def read_level(text: str) -> str:
    level = text.strip().upper()
    if level not in LOG_LEVELS:
        raise ValueError("must be " + ", ".join(LOG_LEVELS[:-1]) + " or " + LOG_LEVELS[-1])
    return level


def read_log_format(text: str) -> str:
    fmt = text.strip().lower()
    if fmt not in LOG_FORMATS:
        raise ValueError("must be " + " or ".join(LOG_FORMATS))
    return fmt


LOG_LEVELS = ("DEBUG", "INFO", "WARNING", "ERROR")
LOG_FORMATS = ("text", "json")
TEXT = Kind(str, "TEXT")
URL = Kind(str, "URL")
BOOL = Kind(_bool, "BOOL", ("true", "false"))
LIST = Kind(read_list, "A,B")
COUNT = Kind(_positive_int, "N")
SECONDS = Kind(_seconds, "SECONDS")
