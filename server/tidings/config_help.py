"""The settings table as people read it: command-line flags with their help, the README's table.

What may live here: formatting of :func:`tidings.config.options`, no reading of
settings. Defaults and accepted values come from the table itself, so the help
and the README cannot drift from it (a test checks the README).
"""

from __future__ import annotations

import argparse
from collections.abc import Mapping
from typing import Any

from .config import flag, options
from .config_values import BOOL


def shown_default(f: Any) -> str:
    """A setting's default as the help and the README show it."""
    value = f.default
    if value is None:
        return "unset"
    if value == ():
        return "none"
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, tuple):
        return ",".join(value)
    return str(value)


def describe(f: Any) -> str:
    """A setting's help: what it does, and the values it accepts when they are few."""
    kind = f.metadata["kind"]
    text = f.metadata["help"]
    if kind.choices and kind is not BOOL:
        text += f" ({', '.join(kind.choices)})"
    return text


def add_flags(parser: argparse.ArgumentParser, names: list[str] | None = None,
              help: Mapping[str, str] | None = None) -> None:
    """Add a ``--flag`` for every setting (or those in ``names``); unset flags stay None.

    ``help`` replaces the help of some settings where a command uses them differently.
    """
    for f in options():
        if names is not None and f.name not in names:
            continue
        meta = f.metadata
        kind = meta["kind"]
        metavar = "{" + ",".join(kind.choices) + "}" if kind.choices else kind.metavar
        text = (help or {}).get(f.name) or f"{describe(f)}; default {shown_default(f)}"
        parser.add_argument(flag(f.name), dest=f.name, default=None, metavar=metavar,
                            help=f"{text} [{meta['env']}]")


def readme_table() -> str:
    """The README's configuration table, generated from the settings table."""
    rows = ["| Environment variable | `tidings serve` flag | Default | Meaning |",
            "|---|---|---|---|"]
    for f in options():
        default = shown_default(f)
        default = default if default in ("unset", "none") else f"`{default}`"
        rows.append(f"| `{f.metadata['env']}` | `{flag(f.name)}` | {default} | {describe(f)} |")
    return "\n".join(rows) + "\n"
