"""The log formatter: one record is one line (plus its marked traceback), and no credential."""

from __future__ import annotations

import io
import logging

import jwt
from hypothesis import given
from hypothesis import strategies as st

from tidings import logsafe

TOKEN = jwt.encode({"sub": "alice", "exp": 2_000_000_000}, "s" * 40, algorithm="HS256")


def _log(*args: object, exc: BaseException | None = None) -> str:
    out = io.StringIO()
    logger = logging.Logger("logsafe-test")
    logger.addHandler(logsafe.handler(out))
    logger.error(*args, exc_info=exc)  # type: ignore[arg-type]
    return out.getvalue()


def test_control_characters_are_escaped():
    line = _log("path %s", "/api/v1/x\n2026-01-01 00:00:00 ERROR forged\r\x1b[31m\x00")
    assert line.count("\n") == 1 and "forged" in line
    assert "\\x0a2026" in line and "\\x1b" in line and "\\x00" in line


def test_credentials_are_redacted_in_messages_and_tracebacks():
    logsafe.protect(["tdk_producer-key-123", None, ""])
    try:
        raise ValueError(f"bad header b'Authorization: Bearer {TOKEN}\\x01'"
                         " and tdk_producer-key-123")
    except ValueError as exc:
        text = _log("header %s; key %s; %s", f"Bearer {TOKEN}", "tdk_producer-key-123",
                    f"Authorization: bearer {TOKEN[:30]}", exc=exc)
    assert TOKEN not in text and TOKEN.split(".")[1] not in text
    assert "tdk_producer-key-123" not in text and TOKEN[:30] not in text
    assert text.count(logsafe.REDACTED) >= 4
    _message, *rest = text.splitlines()
    assert rest and all(line.startswith("  | ") for line in rest), "traceback lines are marked"


@given(st.text())
def test_any_logged_value_stays_on_one_line(value):
    text = _log("value %s and %r", value, value)
    assert text.endswith("\n") and text.count("\n") == 1
    assert not any(ch in text[:-1] for ch in "\r\x00\x1b\x85\u2028\u2029")
