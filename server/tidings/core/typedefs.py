"""Notification types: what a producer declares about a kind of notification.

What may live here: the declared shape of a type (``PUT /api/v1/types/{name}``),
the checks a schema cannot state (:func:`check_type`), and how a publish's push
options are laid over the type's (:func:`merged_push`).

A type holds a ``title`` shown to users; ``channels``, each channel it may use
(``push``, ``email``, ``web_push``) with whether it is on by default (a channel
absent is not used for this type); ``required`` (users cannot turn off a
channel that is on by default: security alerts, receipts); default ``push``
options (the same shape as a publish's ``push``); a ``digest`` window; and
``templates`` per channel, checked when the type is saved
(:mod:`tidings.core.templates`).
"""

from __future__ import annotations

import re
from typing import Annotated, Any, Literal

import msgspec
from msgspec import Meta, Struct

from . import errors, templates
from .errors import ValidationError
from .ids import whole
from .requests import MAX_DELAY_SECONDS, PushOptions, reserved_extra_key

#: The channels a notification can take besides the in-app inbox.
CHANNELS = ("push", "email", "web_push")
Channel = Literal["push", "email", "web_push"]
TYPE_NAME_PATTERN = whole("^[A-Za-z0-9_.:-]{1,64}$")
TYPE_NAME_RULE = "type names are 1 to 64 characters of A-Z a-z 0-9 _ . : -"
_TYPE_NAME_RE = re.compile(TYPE_NAME_PATTERN)
Template = Annotated[str, Meta(max_length=templates.MAX_TEMPLATE_CHARS)]


class Digest(Struct, forbid_unknown_fields=True):
    """Out-of-app sends of one user's notifications of this type are held ``window``
    seconds and then sent once, for those still unread."""

    window: Annotated[float, Meta(ge=1, le=MAX_DELAY_SECONDS)]


class PushTemplates(Struct, forbid_unknown_fields=True, omit_defaults=True):
    """A push's title and body; a digest's title and body (names: count, type_title,
    notifications)."""

    title: Template | None = None
    body: Template | None = None
    digest_title: Template | None = None
    digest_body: Template | None = None


class EmailTemplates(Struct, forbid_unknown_fields=True, omit_defaults=True):
    """An e-mail's subject, text part and HTML part, and a digest's."""

    subject: Template | None = None
    text: Template | None = None
    html: Template | None = None
    digest_subject: Template | None = None
    digest_text: Template | None = None
    digest_html: Template | None = None


class Templates(Struct, forbid_unknown_fields=True, omit_defaults=True):
    push: PushTemplates | None = None
    email: EmailTemplates | None = None
    web_push: PushTemplates | None = None


class TypeDefinition(Struct, forbid_unknown_fields=True):
    """``PUT /api/v1/types/{name}``: one kind of notification."""

    title: Annotated[str, Meta(min_length=1, max_length=255)]
    channels: dict[Channel, bool] = msgspec.field(default_factory=lambda: {"push": True})
    required: bool = False
    push: PushOptions | None = None
    digest: Digest | None = None
    templates: Templates = msgspec.field(default_factory=Templates)


def check_name(name: str) -> str:
    if not _TYPE_NAME_RE.fullmatch(name):
        raise errors.INVALID_TYPE_NAME.error(TYPE_NAME_RULE)
    return name


def is_type_name(name: str) -> bool:
    return _TYPE_NAME_RE.fullmatch(name) is not None


_DIGEST_FIELDS = {"digest_title", "digest_body", "digest_subject", "digest_text",
                  "digest_html"}


def check_type(t: TypeDefinition) -> TypeDefinition:
    """The rules between fields, and every template checked; returns ``t``."""
    push = t.push
    if push is not None:
        bad = next((k for k in push.extra or () if reserved_extra_key(k)), None)
        if bad is not None:
            raise errors.RESERVED_EXTRA_KEY.error(f"push.extra may not hold the key {bad!r}")
        if push.when == "unread_after" and push.after is None:
            raise ValidationError(
                "push.after (seconds) is required when push.when is 'unread_after'")
    for channel in CHANNELS:
        group = getattr(t.templates, channel)
        if group is None:
            continue
        for field, source in msgspec.structs.asdict(group).items():
            if source is not None:
                names = (templates.DIGEST_NAMES if field in _DIGEST_FIELDS
                         else templates.NOTIFICATION_NAMES)
                templates.check(f"templates.{channel}.{field}", source, names)
    return t


def merged_push(t: TypeDefinition, publish: PushOptions | None) -> dict[str, Any]:
    """The push options a publish of type ``t`` owes: the type's defaults with the
    publish's own fields laid over them (a type using neither push nor web_push plans
    no push; the job's sends go to mobile devices by ``push`` and to browsers by
    ``web_push``)."""
    if "push" not in t.channels and "web_push" not in t.channels:
        return {"when": "never"}
    base = msgspec.to_builtins(t.push) if t.push is not None else {}
    own = msgspec.to_builtins(publish) if publish is not None else {}
    return {"when": "offline", **base, **own}


def to_document(name: str, t: TypeDefinition) -> dict[str, Any]:
    """A type as the API shows it."""
    return {"name": name, **msgspec.to_builtins(t)}
