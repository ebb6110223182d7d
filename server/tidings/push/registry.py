"""Push apps from settings, and the provider of each device.

``TIDINGS_PUSH_CONFIG`` is a JSON list (or ``@path`` to a file holding one) of
apps, each an object:

- ``{"platform": "apns", "kind": "apns", "topic": "com.example.app",
  "key": "<.p8 PEM>" | "key_file": "...", "key_id": "...", "team_id": "..."}``
  or with ``"cert_file": "<PEM with cert and key>"`` instead of the key;
  optional ``"sandbox": true``, ``"host"``, ``"port"``, ``"ca_file"`` (a proxy
  or a test server), ``"max_connections"`` (10) and ``"streams_per_connection"``
  (100; Apple allows up to 1,000 concurrent streams on a connection).
- ``{"platform": "fcm", "kind": "fcm", "service_account": {...}`` or
  ``"service_account_file": "..."}``; optional ``"project_id"``, ``"token_url"``,
  ``"api_url"``, ``"max_connections"`` (HTTP/1.1 connections, 1,000).
- ``{"platform": "webpush", "kind": "webpush"}``: browsers' push services, signed
  with the VAPID key of ``TIDINGS_VAPID_PRIVATE_KEY`` and ``TIDINGS_VAPID_SUBJECT``
  and posting only where ``TIDINGS_WEBPUSH_ALLOWED_HOSTS`` allows (both given
  as a :class:`WebPushSetup`); optional ``"ca_file"`` (a test server),
  ``"max_connections"`` (200), ``"timeout"`` (30 s).
- ``{"platform": "apns" | "fcm" | "webpush", "kind": "console"}``: print payloads.

Every app may set ``"app_id"`` (default: the APNs topic, the FCM project id),
``"default": true`` and ``"concurrency"``: sends in flight at once, by default
what the provider's connections carry (APNs: connections times streams; FCM: its
connections; console: 32); a worker claims jobs up to the sum over apps. A
device row's ``app_id`` picks its app; a device with none goes to the app
marked default for its platform, else the first one listed; a device naming an
app that is not configured gets no push (a "failed" outcome), except where the
platform's default app has no ``app_id`` (console). With no setting, APNs and
FCM print to the console, and so does Web Push unless a VAPID key is set; with a
VAPID key and no ``webpush`` app listed, one is added.
"""

from __future__ import annotations

import asyncio
import ssl
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import orjson

from ..core.errors import ConfigError
from ..core.push import Device
from ..core.webpush import HostPolicy
from .apns import APNsProvider
from .base import PushProvider
from .console import ConsoleProvider
from .fcm import FCMProvider
from .vapid import Vapid
from .webpush import WebPushProvider

SETTING = "TIDINGS_PUSH_CONFIG"
APNS_CONNECTIONS = 10
APNS_STREAMS = 100  # h2's default; aioapns follows the server's MAX_CONCURRENT_STREAMS
FCM_CONNECTIONS = 1000
WEBPUSH_CONNECTIONS = 200
CONSOLE_CONCURRENCY = 32
PLATFORMS = ("apns", "fcm", "webpush")
DEV_CONFIG = [{"platform": "apns", "kind": "console"}, {"platform": "fcm", "kind": "console"}]


@dataclass(frozen=True)
class WebPushSetup:
    """What Web Push sends need from the settings: the VAPID signer (None: no key set) and
    where they may post."""

    vapid: Vapid | None
    policy: HostPolicy


@dataclass(frozen=True)
class App:
    platform: str
    app_id: str | None
    provider: PushProvider
    capacity: int  # sends in flight at once
    limit: asyncio.Semaphore  # holds capacity


def parse_config(value: str | None, vapid: bool = False) -> list[dict[str, Any]]:
    """The app list of the setting's value (JSON, or ``@path``); the dev list when unset.
    ``vapid``: a VAPID key is set, so Web Push sends for real unless an app says otherwise."""
    webpush = {"platform": "webpush", "kind": "webpush" if vapid else "console"}
    if not value:
        return [*DEV_CONFIG, webpush]
    try:
        text = Path(value[1:]).read_bytes() if value.startswith("@") else value
        apps = orjson.loads(text)
    except (OSError, orjson.JSONDecodeError) as exc:
        raise ConfigError(SETTING, f"not readable JSON: {exc}") from None
    if not isinstance(apps, list) or not all(isinstance(a, dict) for a in apps):
        raise ConfigError(SETTING, "must be a JSON list of app objects")
    if vapid and not any(a.get("platform") == "webpush" for a in apps):
        apps.append(webpush)
    return apps


def _text(app: dict[str, Any], key: str) -> str | None:
    """``app[key]``, or the contents of the file ``app[key + '_file']``."""
    if key in app:
        return app[key]
    path = app.get(f"{key}_file")
    return Path(path).read_text() if path else None


def build_provider(app: dict[str, Any], clock: Callable[[], float] | None = None,
                   webpush: WebPushSetup | None = None) -> PushProvider:
    kind = app.get("kind")
    timing = {"clock": clock} if clock else {}
    if kind == "console":
        return ConsoleProvider()
    if kind == "webpush":
        if webpush is None or webpush.vapid is None:
            raise ValueError("Web Push needs TIDINGS_VAPID_PRIVATE_KEY and TIDINGS_VAPID_SUBJECT"
                             " (`tidings vapid` makes a key)")
        ca = app.get("ca_file")
        return WebPushProvider(
            webpush.vapid, webpush.policy,
            ssl_context=ssl.create_default_context(cafile=ca) if ca else None,
            timeout=float(app.get("timeout", 30.0)),
            max_connections=int(app.get("max_connections", WEBPUSH_CONNECTIONS)), **timing)
    if kind == "apns":
        ca = app.get("ca_file")
        return APNsProvider(
            topic=app["topic"], key=_text(app, "key"), key_id=app.get("key_id"),
            team_id=app.get("team_id"), cert_file=app.get("cert_file"),
            sandbox=bool(app.get("sandbox", False)), host=app.get("host"), port=app.get("port"),
            ssl_context=ssl.create_default_context(cafile=ca) if ca else None,
            max_connections=int(app.get("max_connections", APNS_CONNECTIONS)), **timing)
    if kind == "fcm":
        account = app.get("service_account")
        if account is None:
            account = orjson.loads(Path(app["service_account_file"]).read_bytes())
        extra = {k: app[k] for k in ("project_id", "token_url", "api_url", "max_connections")
                 if k in app}
        return FCMProvider(account, **extra, **timing)
    raise ValueError(f"unknown kind {kind!r} (apns, fcm, webpush or console)")


def default_capacity(app: dict[str, Any]) -> int:
    """Sends one app's provider connections carry at once."""
    match app.get("kind"):
        case "apns":
            return (int(app.get("max_connections", APNS_CONNECTIONS))
                    * int(app.get("streams_per_connection", APNS_STREAMS)))
        case "fcm":
            return int(app.get("max_connections", FCM_CONNECTIONS))
        case "webpush":
            return int(app.get("max_connections", WEBPUSH_CONNECTIONS))
        case _:
            return CONSOLE_CONCURRENCY


class Registry:
    """The configured apps; :meth:`for_device` picks one per device."""

    def __init__(self, apps: list[App]):
        self.apps = apps
        self._by_id = {(a.platform, a.app_id): a for a in apps if a.app_id}
        self._default: dict[str, App] = {}
        for a in apps:
            self._default.setdefault(a.platform, a)

    @classmethod
    def from_config(cls, config: list[dict[str, Any]],
                    clock: Callable[[], float] | None = None,
                    webpush: WebPushSetup | None = None) -> Registry:
        apps: list[App] = []
        defaults: list[App] = []
        for i, entry in enumerate(config):
            platform = entry.get("platform")
            if platform not in PLATFORMS:
                raise ConfigError(SETTING, f"app {i}: platform must be 'apns', 'fcm' or"
                                           " 'webpush'")
            try:
                provider = build_provider(entry, clock, webpush)
                app_id = entry.get("app_id") or getattr(
                    provider, "topic", None) or getattr(provider, "project_id", None)
            except (KeyError, ValueError, OSError) as exc:
                raise ConfigError(SETTING, f"app {i} ({platform}): {exc!r}") from None
            capacity = int(entry.get("concurrency") or default_capacity(entry))
            app = App(platform, app_id, provider, capacity, asyncio.Semaphore(capacity))
            (defaults if entry.get("default") else apps).append(app)
        return cls(defaults + apps)

    def for_device(self, device: Device) -> App | None:
        """The device's app; an app without ``app_id`` (console) takes any of its platform."""
        default = self._default.get(device.platform)
        if device.app_id and (device.platform, device.app_id) in self._by_id:
            return self._by_id[device.platform, device.app_id]
        if default is not None and (not device.app_id or default.app_id is None):
            return default
        return None

    async def close(self) -> None:
        for app in self.apps:
            await app.provider.close()
