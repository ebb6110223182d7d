"""The commands that talk to a running server: ``push``, ``listen``, ``devices add``;
and ``token``, which mints with the same credentials the server uses.

Where the server is: ``--url``; else ``TIDINGS_HOST``/``TIDINGS_PORT`` (or
their flags) when set; else the address a running ``tidings serve`` left in
the data folder (``server.json``); else the default ``127.0.0.1:8000``. The
credentials are the settings' or the data folder's dev ones; these commands
never create the data folder or its credentials (``serve`` does).
"""

from __future__ import annotations

import argparse
import json
import os
import secrets
import sys
import urllib.error
import urllib.request
from typing import Any

from .. import datadir
from ..config import Settings
from ..core.errors import ConfigError
from . import common
from .serve import local_url


def server_url(args: argparse.Namespace, settings: Settings) -> tuple[str, str]:
    """(URL of the server, where that URL came from)."""
    if args.url:
        return args.url.rstrip("/"), "--url"
    explicit = any(getattr(args, n, None) is not None for n in ("host", "port")) or any(
        os.environ.get(v) for v in ("TIDINGS_HOST", "TIDINGS_PORT"))
    if not explicit:
        found = datadir.read_address(settings.data_dir)
        if found:
            return found, f"the running server's address in {settings.data_dir / datadir.ADDRESS}"
    return local_url(settings), "the settings" if explicit else "the default address"


def user_token(settings: Settings, user: str, ttl: int, flag: str) -> str:
    from ..auth import mint

    if not settings.jwt_secret:
        raise ConfigError(flag, "no secret to mint a user token with: set TIDINGS_JWT_SECRET,"
                          " or run this where tidings serve keeps its data (--data-dir)")
    return mint(settings.jwt_secret, user, ttl, audience=settings.jwt_audience,
                issuer=settings.jwt_issuer)


def cmd_token(args: argparse.Namespace) -> int:
    """Mint with the settings' secret, else the dev credentials of the data folder.

    Writes nothing: a folder where no ``tidings serve`` has run has no dev
    credentials, and a token minted there would fit no server.
    """
    settings = common.settings(args, require_auth=False)
    if not args.producer and not args.user:
        raise ConfigError("USER", "name the user: tidings token alice")
    if not args.producer and (settings.jwt_public_key or settings.jwt_jwks_url):
        raise ConfigError("TIDINGS_JWT_SECRET", "tokens for public-key verification are minted"
                          " by your identity provider, not by tidings")
    embedded = settings.embedded
    settings = common.resolve(settings, create=False)
    missing = not settings.api_keys if args.producer else not settings.jwt_secret
    if missing and embedded:
        raise ConfigError("TIDINGS_DATA_DIR", f"no dev credentials in {settings.data_dir}: run"
                          " this where tidings serve runs (or give its --data-dir), or set "
                          + ("TIDINGS_API_KEYS" if args.producer else "TIDINGS_JWT_SECRET"))
    if args.producer:
        if not settings.api_keys:
            raise ConfigError("TIDINGS_API_KEYS", "no producer key is set")
        print(settings.api_keys[0])
        return 0
    print(user_token(settings, args.user, args.ttl, "TIDINGS_JWT_SECRET"))
    return 0


def api_target(args: argparse.Namespace) -> tuple[str, str]:
    settings = common.resolve(common.settings(args, require_auth=False), create=False)
    url, _source = server_url(args, settings)
    key = args.api_key or os.environ.get("TIDINGS_API_KEY") or (
        settings.api_keys[0] if settings.api_keys else None)
    if not key:
        raise ConfigError("TIDINGS_API_KEY", "a producer API key is needed (--api-key)")
    return url, key


def call(url: str, path: str, bearer: str, body: dict[str, Any] | None, command: str,
          method: str = "POST") -> str | None:
    """Send ``body`` (POST by default); prints and returns the answer, or tells why there is
    none (None)."""
    request = urllib.request.Request(
        f"{url}{path}", data=None if body is None else json.dumps(body).encode(), method=method,
        headers={"Authorization": f"Bearer {bearer}", "Content-Type": "application/json"})
    try:
        with urllib.request.urlopen(request, timeout=30) as resp:
            answer = resp.read().decode()
    except urllib.error.HTTPError as exc:
        print(f"tidings {command}: {exc.code} {exc.read().decode()}", file=sys.stderr)
        return None
    except urllib.error.URLError as exc:
        print(f"tidings {command}: cannot reach {url} ({exc.reason})", file=sys.stderr)
        return None
    print(answer)
    return answer


def _push_body(args: argparse.Namespace) -> tuple[str, dict[str, Any]]:
    """The path and body of ``tidings push``: one publish, or ``--batch FILE`` (a JSON array
    of publishes, or an object with ``notifications``)."""
    if args.batch:
        try:
            with open(args.batch, "rb") as f:
                found = json.load(f)
        except (OSError, ValueError) as exc:
            raise ConfigError("--batch", f"cannot read a JSON batch ({exc})") from None
        return "/api/v1/notifications/batch", (
            found if isinstance(found, dict) else {"notifications": found})
    if not args.user or not args.message:
        raise ConfigError("--user", "--user and --message are required (or --batch FILE)")
    push: dict[str, Any] = {"when": args.when}
    if args.badge is not None:
        push["badge"] = args.badge
    if args.sound:
        push["sound"] = args.sound
    if args.extra:
        try:
            push["extra"] = json.loads(args.extra)
        except json.JSONDecodeError as exc:
            raise ConfigError("--extra", f"not JSON ({exc})") from None
    body = {"recipients": args.user, "message": args.message, "push": push,
            "persist": not args.no_persist}
    if args.title:
        body["title"] = args.title
    return "/api/v1/notifications", body


def cmd_push(args: argparse.Namespace) -> int:
    """Publish one notification (or a batch) through a running server's producer API.

    Exit status 0 only if every publish was accepted (each member of a batch included)."""
    url, key = api_target(args)
    path, body = _push_body(args)
    answer = call(url, path, key, body, "push")
    if answer is None:
        return 1
    results = json.loads(answer).get("results", [])
    return 1 if any(r["status"] >= 400 for r in results) else 0


def _device_body(args: argparse.Namespace) -> dict[str, Any]:
    """The registration of ``devices add``: a token (made up unless given) for apns and fcm,
    the ``--subscription`` for webpush (the server checks its endpoint and keys)."""
    body: dict[str, Any] = {"platform": args.platform, "name": args.name}
    if args.platform != "webpush":
        if args.subscription is not None:
            raise ConfigError("--subscription", "only a webpush device has a subscription")
        body["token"] = args.device or (secrets.token_hex(32) if args.platform == "apns"
                                        else "dev-" + secrets.token_urlsafe(32))
        return body
    if args.device is not None:
        raise ConfigError("--device", "a webpush device's token is derived from its"
                          " endpoint: give --subscription only")
    if not args.subscription:
        raise ConfigError("--subscription", "a webpush device needs the browser's subscription"
                          " (JSON, or @FILE holding it)")
    text = args.subscription
    if text.startswith("@"):
        try:
            with open(text[1:], encoding="utf-8") as f:
                text = f.read()
        except OSError as exc:
            raise ConfigError("--subscription", f"cannot read {text[1:]} ({exc})") from None
    try:
        subscription = json.loads(text)
    except json.JSONDecodeError as exc:
        raise ConfigError("--subscription", f"not JSON ({exc})") from None
    if not isinstance(subscription, dict):
        raise ConfigError("--subscription", 'not a JSON object like {"endpoint": ..., "keys":'
                          ' {"p256dh": ..., "auth": ...}}')
    body["subscription"] = subscription
    return body


def cmd_devices_add(args: argparse.Namespace) -> int:
    """Register a device for a user (a made-up APNs token unless one is given; a browser's
    subscription for ``--platform webpush``)."""
    body = _device_body(args)
    settings = common.resolve(common.settings(args, require_auth=False), create=False)
    url, _source = server_url(args, settings)
    token = args.token or user_token(settings, args.user, 300, "--token")
    return 0 if call(url, "/api/v1/me/devices", token, body, "devices add") is not None else 1
