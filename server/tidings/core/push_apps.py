"""Push apps as the operator's console shows them: configuration with secrets masked, and
which app each logged push outcome belongs to.

Pure rules, no I/O. Contracts:

- :func:`masked` never returns a secret of an app entry: private keys and
  certificates given inline, and every value of a field whose name says it is
  secret, become :data:`MASK`; a service account keeps only its identity
  (``project_id``, ``client_email``, ``client_id``, ``token_uri``). Paths to
  files (``key_file``, ``cert_file``, ...) are shown: they name, not hold, a secret.
- :func:`attribute` follows the registry's choice of app for a device (see
  :mod:`tidings.push.registry`): the app with the device's ``app_id``, else
  the default app of its platform when the device names none (or that app
  takes any); outcomes of devices no app would take count as unconfigured.
  Every outcome counted goes to exactly one place.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

MASK = "********"
#: Fields that hold a secret inline, whatever their value looks like.
SECRET_FIELDS = frozenset({"key", "private_key", "private_key_id", "cert", "password",
                           "secret", "client_secret", "token", "auth", "vapid_private_key"})
#: The parts of a service account that identify it without giving it away.
ACCOUNT_PUBLIC = ("project_id", "client_email", "client_id", "token_uri", "type")
#: Outcomes that count as sent, and sends that count as errors ('dead' is the record of
#: giving up after a 'retry', not a send of its own).
SENT = frozenset({"pushed"})
ERRORS = frozenset({"failed", "deactivated", "retry"})


def _secret_name(name: str) -> bool:
    low = name.lower()
    return low in SECRET_FIELDS or any(w in low for w in ("secret", "password", "private"))


def masked(entry: Mapping[str, Any]) -> dict[str, Any]:
    """``entry`` (one app of ``TIDINGS_PUSH_CONFIG``) with every secret replaced by MASK."""
    out: dict[str, Any] = {}
    for name, value in entry.items():
        if name == "service_account" and isinstance(value, Mapping):
            out[name] = {k: value[k] for k in ACCOUNT_PUBLIC
                         if k in value and isinstance(value[k], str)}
            if any(k not in ACCOUNT_PUBLIC for k in value):
                out[name]["private_key"] = MASK
        elif _secret_name(name):
            out[name] = MASK
        elif isinstance(value, Mapping):
            out[name] = masked(value)
        elif isinstance(value, str | int | float | bool) or value is None:
            out[name] = value
        else:  # a list or anything else: not part of any app's documented fields
            out[name] = MASK
    return out


@dataclass(frozen=True, slots=True)
class AppRef:
    """How the registry knows an app: its platform, its id, and whether it is the default."""

    platform: str
    app_id: str | None
    default: bool = False


@dataclass(slots=True)
class Tally:
    sent: int = 0
    errors: int = 0
    outcomes: dict[str, int] = field(default_factory=dict)

    def add(self, outcome: str, n: int) -> None:
        self.outcomes[outcome] = self.outcomes.get(outcome, 0) + n
        self.sent += n if outcome in SENT else 0
        self.errors += n if outcome in ERRORS else 0


def chooser(apps: Sequence[AppRef]) -> dict[str, int]:
    """Platform -> index of its default app (marked default, else listed first)."""
    default: dict[str, int] = {}
    for i, app in enumerate(apps):
        if app.default:
            default.setdefault(app.platform, i)
    for i, app in enumerate(apps):
        default.setdefault(app.platform, i)
    return default


def app_of(apps: Sequence[AppRef], platform: str, app_id: str | None) -> int | None:
    """The index of the app a device of ``platform`` naming ``app_id`` is sent through."""
    for i, app in enumerate(apps):
        if app_id and app.platform == platform and app.app_id == app_id:
            return i
    d = chooser(apps).get(platform)
    if d is not None and (not app_id or apps[d].app_id is None):
        return d
    return None


def attribute(apps: Sequence[AppRef],
              outcomes: Iterable[tuple[str, str | None, str, int]]) -> tuple[list[Tally], Tally]:
    """Each app's tally of (platform, device app_id, outcome, count) rows, and the tally of
    the outcomes no configured app takes."""
    tallies = [Tally() for _ in apps]
    unconfigured = Tally()
    for platform, app_id, outcome, n in outcomes:
        i = app_of(apps, platform, app_id)
        (unconfigured if i is None else tallies[i]).add(outcome, n)
    return tallies, unconfigured
