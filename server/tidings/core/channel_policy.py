"""The send-time decision of one out-of-app channel for one notification of one user.

What may live here: the rule that turns a notification's type, the user's
choices, their quiet hours and the time of their day into one :data:`Decision`.
It reads no clock: the caller passes the minute of the user's local day
(resolved from the profile's timezone outside ``core``) and turns a
:class:`Defer` into an instant.

Contract, in this order:

1. An undeclared type (or none) is sent, as before types existed.
2. A channel the type does not use is skipped (``"type"``).
3. A channel the user turned off (globally, or for this type) is skipped
   (``"preference"``); a required type's default channels cannot be turned off.
4. A type with a digest window, for a job that is not yet a digest, is held for
   the window (:class:`Digest`); the digest itself comes here again when due.
5. Inside the user's quiet hours (not for a required type) the send waits until
   they end (:class:`Defer`, the local minute they end).
6. Otherwise it is sent.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

from .preferences import Choices, channel_on, in_quiet_hours
from .typedefs import TypeDefinition


@dataclass(frozen=True, slots=True)
class Send:
    pass


@dataclass(frozen=True, slots=True)
class Skip:
    reason: str  # "type" | "preference"


@dataclass(frozen=True, slots=True)
class Defer:
    resume_minute: int  # the local minute of the day the quiet hours end


@dataclass(frozen=True, slots=True)
class Digest:
    window: float  # seconds to hold the user's sends of this type


Decision = Send | Skip | Defer | Digest
SEND = Send()


def decide(channel: str, type_name: str | None, types: Mapping[str, TypeDefinition],
           choices: Choices, local_minute: int, *, digest_due: bool = False) -> Decision:
    """What to do now with ``channel``'s send of a notification of type ``type_name``.

    ``local_minute`` is the minute of the user's day now (0 to 1439); ``digest_due``
    says the job is a digest that has come due (it is not held again).
    """
    t = types.get(type_name) if type_name is not None else None
    if t is None:
        return SEND
    if channel not in t.channels:
        return Skip("type")
    if not channel_on(types, type_name, choices, channel):  # type: ignore[arg-type]
        return Skip("preference")
    if t.digest is not None and not digest_due:
        return Digest(t.digest.window)
    quiet = choices.quiet_hours
    if quiet is not None and not t.required and in_quiet_hours(quiet, local_minute):
        return Defer(quiet.end_minute)
    return SEND
