"""The log formatter: one record is one line (plus its marked traceback), and no credential."""

from __future__ import annotations

import contextvars
import io
import json
import logging
import re

import jwt
from hypothesis import given
from hypothesis import strategies as st

from tidings import logcontext, logsafe

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


def _json_log(*args: object, exc: BaseException | None = None,
              level: int = logging.WARNING) -> str:
    out = io.StringIO()
    logger = logging.Logger("logsafe-json-test")
    logger.addHandler(logsafe.handler(out, fmt="json"))
    logger.log(level, *args, exc_info=exc)  # type: ignore[arg-type]
    return out.getvalue()


def test_json_lines_carry_the_fields_and_the_ids_that_are_known():
    context = contextvars.copy_context()

    def in_a_request() -> str:
        logcontext.begin("req-42", "node-a")
        logcontext.bind(user_id="alice")
        return _json_log("published %d", 3)

    line = json.loads(context.run(in_a_request))
    assert re.fullmatch(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z", line.pop("time"))
    assert line == {"level": "WARNING", "logger": "logsafe-json-test", "message": "published 3",
                    "request_id": "req-42", "user_id": "alice", "node_id": "node-a"}
    outside = json.loads(_json_log("no request here", level=logging.INFO))
    assert outside["level"] == "INFO" and not {"request_id", "user_id"} & set(outside)


def test_request_ids_from_a_header_only_when_they_are_plain():
    context = contextvars.copy_context()
    assert context.run(logcontext.begin, "edge-7f3a.1_b", None) == "edge-7f3a.1_b"
    for header in (None, "", "x" * 65, "a b", "a\r\nb", "é", f"Bearer {TOKEN}"):
        made = context.run(logcontext.begin, header, None)
        assert re.fullmatch(r"[0-9a-f]{16}", made)


def test_json_lines_redact_credentials_in_messages_ids_and_tracebacks():
    logsafe.protect(["tdk_json-key-456"])
    context = contextvars.copy_context()

    def in_a_request() -> str:
        logcontext.begin(None, "node-a", user_id=TOKEN)
        try:
            raise ValueError(f"Authorization: Bearer {TOKEN} and tdk_json-key-456")
        except ValueError as exc:
            return _json_log("header %s", f"Bearer {TOKEN}", exc=exc)

    text = context.run(in_a_request)
    assert text.count("\n") == 1
    line = json.loads(text)
    assert TOKEN not in text and TOKEN.split(".")[1] not in text
    assert "tdk_json-key-456" not in text
    assert line["user_id"] == logsafe.REDACTED and line["message"] == "header Bearer [redacted]"
    assert "ValueError" in line["exception"] and logsafe.REDACTED in line["exception"]


@given(st.text())
def test_any_logged_value_is_one_json_line(value):
    text = _json_log("value %s", value)
    assert text.isascii() and len(text.splitlines()) == 1 and text.endswith("\n")
    assert json.loads(text)["message"] == logsafe.redact(f"value {value}")
