"""The dev credentials of an embedded data folder: a random JWT secret and producer API key.

Kept in ``dev-auth.json`` (mode 0600) so that every run on that folder, and
``tidings token``, agree on them. Used only when no JWT or API key is set.
"""

from __future__ import annotations

import json
import os
import secrets
from pathlib import Path

FILE = "dev-auth.json"


def load(data_dir: Path) -> tuple[str, str] | None:
    """(jwt_secret, api_key) of ``data_dir``, or None if it has none yet."""
    path = data_dir / FILE
    if not path.exists():
        return None
    saved = json.loads(path.read_text())
    return saved["jwt_secret"], saved["api_key"]


def load_or_create(data_dir: Path) -> tuple[str, str]:
    """(jwt_secret, api_key) of ``data_dir``, created on first use."""
    saved = load(data_dir)
    if saved is not None:
        return saved
    path = data_dir / FILE
    data_dir.mkdir(parents=True, exist_ok=True)
    creds = {"jwt_secret": secrets.token_urlsafe(48), "api_key": "tdk_" + secrets.token_urlsafe(32)}
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(fd, "w") as f:
        json.dump(creds, f)
    return creds["jwt_secret"], creds["api_key"]
