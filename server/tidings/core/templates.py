"""Notification templates: checked when a type is saved, rendered when a channel sends.

What may live here: the sandboxed template engine's use (Jinja2's
``SandboxedEnvironment`` with ``StrictUndefined``), the names a template may
use, and the rendering of one notification (or one digest) into text.

Contracts:

- :func:`check` refuses (``ValidationError``, code ``invalid_template``, the field
  named) a template that does not parse, names a variable that no
  notification has, or fails on a sample notification; a type is saved only
  when all its templates pass. It never raises anything else.
- :func:`render` never fails a send: a template that fails on a particular
  notification (a missing key of its ``data``, a value the sandbox refuses)
  gives None, and the channel uses the notification's own text instead.
- Templates run in the sandbox: no attribute starting with ``_``, no unsafe
  callables; output is plain text (no HTML escaping; e-mail HTML bodies escape
  with the ``e`` filter where they need it).
"""

from __future__ import annotations

from collections.abc import Mapping
from functools import lru_cache
from typing import Any

from jinja2 import StrictUndefined, TemplateError, meta
from jinja2.sandbox import SandboxedEnvironment

from . import errors
from .errors import ValidationError

#: The names a notification's templates may use.
NOTIFICATION_NAMES = frozenset({
    "message", "title", "type", "data", "created_by", "model", "instance", "method",
    "changed_data", "custom_info", "uid", "seq", "recipient", "type_title"})
#: The names a digest's templates may use: how many, the type's title, and the
#: notifications themselves (each with the names above).
DIGEST_NAMES = frozenset({"count", "type", "type_title", "notifications", "recipient"})
MAX_TEMPLATE_CHARS = 4000
#: The most characters one template may render (a digest's e-mail listing included).
MAX_OUTPUT_CHARS = 256 * 1024


class _TooLong(Exception):
    """A template's output passed MAX_OUTPUT_CHARS."""


class _BoundedSandbox(SandboxedEnvironment):
    """The sandbox bounds ``range``; this also bounds repetition (``'x' * n``) and powers,
    so no short template makes megabytes or a huge number before its output is counted."""

    intercepted_binops = frozenset({"*", "**"})

    def call_binop(self, context: Any, operator: str, left: Any, right: Any) -> Any:
        if operator == "**" and isinstance(right, int) and abs(right) > 64:
            raise _TooLong(f"an exponent of {right}")
        if operator == "*":
            for seq, times in ((left, right), (right, left)):
                if (isinstance(seq, str | list | tuple) and isinstance(times, int)
                        and len(seq) * times > MAX_OUTPUT_CHARS):
                    raise _TooLong(f"a repetition of more than {MAX_OUTPUT_CHARS} items")
        return super().call_binop(context, operator, left, right)


_env = _BoundedSandbox(undefined=StrictUndefined, autoescape=False,
                       keep_trailing_newline=False)


def _render(compiled: Any, context: dict[str, Any]) -> str:
    """The output, refused (``_TooLong``) once it passes MAX_OUTPUT_CHARS."""
    parts: list[str] = []
    size = 0
    for part in compiled.generate(context):
        size += len(part)
        if size > MAX_OUTPUT_CHARS:
            raise _TooLong(f"more than {MAX_OUTPUT_CHARS} characters of output")
        parts.append(part)
    return "".join(parts)

_SAMPLE_NOTIFICATION: dict[str, Any] = {
    "message": "A sample message", "title": "A sample title", "type": "sample", "data": {},
    "created_by": "someone", "model": "model", "instance": "1", "method": "method",
    "changed_data": {}, "custom_info": {}, "uid": "00000000-0000-0000-0000-000000000000",
    "seq": 1, "recipient": "someone", "type_title": "Samples"}


def _sample(names: frozenset[str]) -> dict[str, Any]:
    if names is DIGEST_NAMES:
        return {"count": 2, "type": "sample", "type_title": "Samples", "recipient": "someone",
                "notifications": [_SAMPLE_NOTIFICATION, _SAMPLE_NOTIFICATION]}
    return _SAMPLE_NOTIFICATION


def check(field: str, source: str, names: frozenset[str] = NOTIFICATION_NAMES) -> None:
    """Refuse ``source`` (the template of ``field``, e.g. ``templates.push.body``) unless it
    parses, uses only ``names`` and renders a sample. A lookup in ``data`` (whose keys
    differ per notification) is not tried on the sample: only at send time."""
    if len(source) > MAX_TEMPLATE_CHARS:
        raise errors.INVALID_TEMPLATE.error(
            f"{field}: a template is at most {MAX_TEMPLATE_CHARS} characters")
    try:
        parsed = _env.parse(source)
        unknown = sorted(meta.find_undeclared_variables(parsed) - names)
        if unknown:
            raise errors.INVALID_TEMPLATE.error(
                f"{field}: unknown name {unknown[0]!r}; a template may use "
                + ", ".join(sorted(names)))
        _render(_compiled(source), dict(_sample(names)))
    except ValidationError:
        raise
    except TemplateError as exc:
        if _data_lookup(exc):
            return
        raise errors.INVALID_TEMPLATE.error(f"{field}: {type(exc).__name__}: {exc}") from None
    except Exception as exc:  # a filter or test raising on the sample (e.g. 1/0)
        raise errors.INVALID_TEMPLATE.error(f"{field}: {type(exc).__name__}: {exc}") from None


def _data_lookup(exc: TemplateError) -> bool:
    """An undefined key of the sample's empty ``data`` (or ``changed_data``,
    ``custom_info``): not a fault of the template."""
    return type(exc).__name__ == "UndefinedError" and "dict object" in str(exc)


def render(source: str | None, context: Mapping[str, Any]) -> str | None:
    """``source`` rendered with ``context``, or None (no template, or it failed here)."""
    if source is None:
        return None
    try:
        return _render(_compiled(source), dict(context))
    except Exception:  # never a failed send: the caller falls back
        return None


@lru_cache(maxsize=512)
def _compiled(source: str) -> Any:
    return _env.from_string(source)


def notification_context(row: Mapping[str, Any], type_title: str | None) -> dict[str, Any]:
    """The names a template sees for one notification (a stored row or a job's content)."""
    ctx = {name: row.get(name) for name in NOTIFICATION_NAMES}
    ctx["recipient"] = row.get("recipient", row.get("user_id"))
    ctx["type_title"] = type_title
    return ctx
