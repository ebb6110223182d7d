"""Users' channel preferences: what a user chose, laid over the declared types.

What may live here: the stored choices (:class:`Choices`), the PATCH body
(:class:`PreferencesPatch`), the effective document clients see
(:func:`effective`), the merge of a PATCH into the choices (:func:`apply_patch`),
and the one rule of whether a channel is on for a user and a type
(:func:`channel_on`), shared with the send-time decision, and whether a user
subscribes to a type (:func:`subscribes`).

Contracts:

- Only choices are stored; defaults come from the types at read time, so a type
  changed later changes what a user who made no choice gets.
- A channel of a type is on when the type offers it and: the type is required
  and the channel is on by default (users cannot turn those off), or the user's
  global switch for the channel is on and their choice for the type (else the
  type's default) is on.
- A user subscribes to a type when some channel of the type is on for them, or
  when the type uses no channel (the inbox only: nothing to turn off). So a
  required type with a channel on by default has every user; a type whose
  channels are all off by default has only those who turned one on.
- A PATCH changes only what it names; a choice for an undeclared type, a channel
  a type does not offer, or turning off a channel of a required type that is on
  by default is refused (``ValidationError``) and changes nothing.
- Stored choices that do not parse (stored under an older rule) count as no
  choice one part at a time (:func:`parse_choices`): an opt-out stands.
- Quiet hours are ``{"start": "HH:MM", "end": "HH:MM"}`` in the user's timezone;
  ``end`` before ``start`` spans midnight; equal times are refused.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Annotated, Any

import msgspec
from msgspec import Meta, Struct

from . import errors
from .ids import whole
from .typedefs import CHANNELS, TYPE_NAME_PATTERN, Channel, TypeDefinition

HHMM_PATTERN = whole("^([01][0-9]|2[0-3]):[0-5][0-9]$")
HHMM = Annotated[str, Meta(pattern=HHMM_PATTERN)]
TypeName = Annotated[str, Meta(pattern=TYPE_NAME_PATTERN)]


class QuietHours(Struct, forbid_unknown_fields=True):
    start: HHMM
    end: HHMM

    @property
    def start_minute(self) -> int:
        return minute_of(self.start)

    @property
    def end_minute(self) -> int:
        return minute_of(self.end)


class TypeChoice(Struct, forbid_unknown_fields=True, omit_defaults=True):
    channels: dict[Channel, bool] = {}


class Choices(Struct, forbid_unknown_fields=True, omit_defaults=True):
    """What one user chose (stored as it is): channel switches, per-type choices, quiet
    hours."""

    channels: dict[Channel, bool] = {}
    types: dict[str, TypeChoice] = {}
    quiet_hours: QuietHours | None = None


class PreferencesPatch(Struct, forbid_unknown_fields=True):
    """``PATCH /api/v1/me/preferences``: any part of the document; ``quiet_hours: null``
    turns quiet hours off."""

    channels: dict[Channel, bool] | msgspec.UnsetType = msgspec.UNSET
    types: dict[TypeName, TypeChoice] | msgspec.UnsetType = msgspec.UNSET
    quiet_hours: QuietHours | msgspec.UnsetType | None = msgspec.UNSET


def minute_of(hhmm: str) -> int:
    hours, _, minutes = hhmm.partition(":")
    return int(hours) * 60 + int(minutes)


def in_quiet_hours(q: QuietHours, minute: int) -> bool:
    """Whether ``minute`` (of the local day) falls in ``q`` (start included, end not)."""
    start, end = q.start_minute, q.end_minute
    if start <= end:
        return start <= minute < end
    return minute >= start or minute < end


def parse_choices(raw: Any) -> Choices:
    """Stored choices (a JSON value). What does not parse counts as no choice, part by
    part (a channel switch, one type's channel, the quiet hours): choices stored under an
    older rule never take a user's other choices, their opt-outs, with them."""
    try:
        return msgspec.convert(raw or {}, Choices)
    except msgspec.ValidationError:
        pass
    raw = raw if isinstance(raw, dict) else {}
    types = raw.get("types") if isinstance(raw.get("types"), dict) else {}
    return Choices(
        channels=_switches(raw.get("channels")),
        types={name: TypeChoice(_switches(choice.get("channels")))
               for name, choice in types.items() if isinstance(choice, dict)},
        quiet_hours=_quiet_hours(raw.get("quiet_hours")))


def _switches(raw: Any) -> dict[Channel, bool]:
    """The channel switches of ``raw`` that parse."""
    if not isinstance(raw, dict):
        return {}
    return {c: on for c, on in raw.items() if c in CHANNELS and isinstance(on, bool)}


def _quiet_hours(raw: Any) -> QuietHours | None:
    try:
        return msgspec.convert(raw, QuietHours | None)
    except msgspec.ValidationError:
        return None


def channel_on(types: Mapping[str, TypeDefinition], name: str, choices: Choices,
               channel: str) -> bool:
    """Whether ``channel`` is on for notifications of the declared type ``name``."""
    t = types[name]
    default = t.channels.get(channel)  # type: ignore[call-overload]
    if default is None:
        return False
    if t.required and default:
        return True
    if not choices.channels.get(channel, True):  # type: ignore[call-overload]
        return False
    chosen = choices.types.get(name)
    own = chosen.channels.get(channel) if chosen is not None else None  # type: ignore[call-overload]
    return default if own is None else own


def subscribes(types: Mapping[str, TypeDefinition], name: str, choices: Choices) -> bool:
    """Whether a user with ``choices`` subscribes to the declared type ``name`` (see the
    module)."""
    channels = types[name].channels
    return not channels or any(channel_on(types, name, choices, c) for c in channels)


def effective(types: Mapping[str, TypeDefinition], choices: Choices) -> dict[str, Any]:
    """The document of ``GET /api/v1/me/preferences``."""
    return {
        "channels": {c: choices.channels.get(c, True) for c in CHANNELS},  # type: ignore[call-overload]
        "types": {
            name: {"title": t.title, "required": t.required,
                   "channels": {c: channel_on(types, name, choices, c) for c in t.channels},
                   "digest": msgspec.to_builtins(t.digest)}
            for name, t in sorted(types.items())},
        "quiet_hours": msgspec.to_builtins(choices.quiet_hours),
    }


@dataclass(frozen=True, slots=True)
class Refused:
    """Why a PATCH is refused: its path in the document and the reason."""

    where: str
    reason: str


_NO_TYPE = "no such notification type"
_REQUIRED = "the type is required: its channels on by default cannot be turned off"


def _refusal(types: Mapping[str, TypeDefinition], patch: PreferencesPatch) -> Refused | None:
    if isinstance(patch.types, dict):
        for name, choice in patch.types.items():
            t = types.get(name)
            if t is None:
                return Refused(f"types.{name}", _NO_TYPE)
            for channel, on in choice.channels.items():
                default = t.channels.get(channel)
                if default is None:
                    return Refused(f"types.{name}.channels.{channel}",
                                   f"the type does not use {channel}")
                if t.required and default and not on:
                    return Refused(f"types.{name}.channels.{channel}", _REQUIRED)
    return None


def apply_patch(types: Mapping[str, TypeDefinition], choices: Choices,
                patch: PreferencesPatch) -> Choices:
    """``choices`` with ``patch`` laid over them; raises ``ValidationError``
    (``required_type`` or ``invalid_preferences``) and changes nothing if refused."""
    refused = _refusal(types, patch)
    if refused is not None:
        message = f"{refused.where}: {refused.reason}"
        if refused.reason == _NO_TYPE:
            raise errors.UNKNOWN_TYPE.error(message)
        kind = errors.REQUIRED_TYPE if refused.reason == _REQUIRED else errors.INVALID_PREFERENCES
        raise kind.error(message)
    channels = dict(choices.channels)
    kinds = {name: TypeChoice(dict(c.channels)) for name, c in choices.types.items()}
    quiet = choices.quiet_hours
    if isinstance(patch.channels, dict):
        channels.update(patch.channels)
    if isinstance(patch.types, dict):
        for name, choice in patch.types.items():
            kinds.setdefault(name, TypeChoice({})).channels.update(choice.channels)
    if not isinstance(patch.quiet_hours, msgspec.UnsetType):
        quiet = patch.quiet_hours
    return Choices(channels, kinds, quiet)
