"""What the operator's console shows of each configured push app, read without connecting.

Contracts: nothing here opens a connection or builds a provider; the files an
app names are read only to learn its id (an FCM service account's project) and
when its credentials expire (an APNs certificate's ``notAfter``). Secrets never
leave: the configuration is shown through :func:`tidings.core.push_apps.masked`.
A file that cannot be read is reported as the app's ``problem``, not raised.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

import orjson
from cryptography import x509

from ..core.push_apps import AppRef, masked
from .registry import default_capacity


@dataclass(frozen=True, slots=True)
class AppInfo:
    ref: AppRef
    kind: str
    capacity: int
    config: dict[str, Any]  # masked
    expires_at: float | None  # unix time the app's credentials expire, if they do
    problem: str | None = None


def _app_id(entry: dict[str, Any]) -> str | None:
    if entry.get("app_id"):
        return str(entry["app_id"])
    match entry.get("kind"):
        case "apns":
            return entry.get("topic")
        case "fcm":
            if entry.get("project_id"):
                return entry["project_id"]
            account = entry.get("service_account")
            if account is None and entry.get("service_account_file"):
                account = orjson.loads(Path(entry["service_account_file"]).read_bytes())
            return account.get("project_id") if isinstance(account, dict) else None
    return None


def _cert_expiry(entry: dict[str, Any]) -> float | None:
    """notAfter of an APNs app's client certificate; token (.p8) auth does not expire."""
    path = entry.get("cert_file")
    if entry.get("kind") != "apns" or not path:
        return None
    cert = x509.load_pem_x509_certificate(Path(path).read_bytes())
    return cert.not_valid_after_utc.timestamp()


def describe(config: list[dict[str, Any]]) -> list[AppInfo]:
    """The apps of a parsed ``TIDINGS_PUSH_CONFIG``, in the order given."""
    out: list[AppInfo] = []
    for entry in config:
        problem = None
        app_id = expires = None
        try:
            app_id = _app_id(entry)
            expires = _cert_expiry(entry)
        except (OSError, ValueError, orjson.JSONDecodeError) as exc:
            problem = f"cannot read the app's files ({type(exc).__name__})"
        out.append(AppInfo(
            AppRef(str(entry.get("platform")), app_id, bool(entry.get("default"))),
            str(entry.get("kind")), int(entry.get("concurrency") or default_capacity(entry)),
            masked(entry), expires, problem))
    return out
