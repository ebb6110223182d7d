"""``tidings types list`` and ``tidings types load FILE``: notification types on a running
server, through its producer API.

``load`` reads a types file (``{"name": {definition}, ...}``, the format of
``TIDINGS_TYPES``) and creates or replaces each type; the exit status is 0 only
if every type was saved (a refused one is reported with the server's error).
"""

from __future__ import annotations

import argparse
import json
from urllib.parse import quote

from ..core.errors import ConfigError
from .remote import api_target, call


def cmd_types_list(args: argparse.Namespace) -> int:
    url, key = api_target(args)
    return 0 if call(url, "/api/v1/types", key, None, "types list", "GET") is not None else 1


def cmd_types_load(args: argparse.Namespace) -> int:
    try:
        with open(args.file, "rb") as f:
            found = json.load(f)
    except (OSError, ValueError) as exc:
        raise ConfigError("FILE", f"cannot read a JSON types file ({exc})") from None
    if not isinstance(found, dict):
        raise ConfigError("FILE", "a types file is a JSON object of types by name")
    url, key = api_target(args)
    failed = 0
    for name, definition in found.items():
        answer = call(url, f"/api/v1/types/{quote(str(name), safe='')}", key, definition,
                      f"types load: {name}", "PUT")
        failed += answer is None
    return 1 if failed else 0
