"""``tidings listen``: a user's live notifications as JSON lines on stdout.

It says on stderr where it connects (and why there: see
:func:`~.remote.server_url`), when the connection is up, and why it retries
while it is not; the subscriber itself resumes from the last seq it saw.
"""

from __future__ import annotations

import argparse
import asyncio
import socket
import sys
from urllib.parse import urlsplit

from . import common
from .remote import server_url, user_token

QUIET = 1.0  # seconds without a connection before the reason is told


def _say(text: str) -> None:
    print(f"tidings listen: {text}", file=sys.stderr, flush=True)


async def _why_not(url: str) -> str:
    """Why a TCP connection to the server's host and port fails (or "it answers")."""
    parts = urlsplit(url)
    port = parts.port or (443 if parts.scheme in ("https", "wss") else 80)
    try:
        _r, writer = await asyncio.wait_for(
            asyncio.open_connection(parts.hostname, port), 3)
    except (OSError, TimeoutError) as exc:
        if isinstance(exc, ConnectionRefusedError):
            return "connection refused: is tidings serve running there?"
        if isinstance(exc, socket.gaierror):
            return "unknown host"
        return str(exc) or type(exc).__name__
    writer.close()
    return "the server answers but the socket was not accepted"


async def _watch(sub, url: str) -> None:
    """Tell the user when the subscription is up, and why it is not while it is down."""
    while True:
        try:
            await asyncio.wait_for(sub.opened.wait(), QUIET)
        except TimeoutError:
            _say(f"cannot connect to {url} ({await _why_not(url)}); retrying")
            await sub.opened.wait()
        _say("connected")
        while sub.opened.is_set():  # noqa: ASYNC110 (the subscriber has no "closed" event)
            await asyncio.sleep(0.2)
        _say("connection lost; reconnecting")


def cmd_listen(args: argparse.Namespace) -> int:
    """Print a user's live notifications as JSON lines (resumes after disconnects)."""
    from ..client import Closed, Subscriber

    settings = common.resolve(common.settings(args, require_auth=False), create=False)
    token = args.token or user_token(settings, args.user, 3600, "--token")
    url, source = server_url(args, settings)
    _say(f"connecting to {url} as {args.user} ({source})")

    async def listen() -> None:
        import orjson

        sub = Subscriber(url, token, since=args.since)
        watcher = asyncio.create_task(_watch(sub, url))
        try:
            async for message in sub:
                print(orjson.dumps(message).decode(), flush=True)
        finally:
            watcher.cancel()

    try:
        asyncio.run(listen())
    except Closed as exc:
        print(f"tidings listen: closed {exc}", file=sys.stderr)
        return 1
    return 0
