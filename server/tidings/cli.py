"""The ``tidings`` command: serve, migrate, token, push, worker.

Settings come from ``TIDINGS_*`` variables and the same as flags; a bad
setting prints one line naming it and exits with status 2.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import gc
import os
import resource
import signal
import subprocess
import sys
from dataclasses import replace
from typing import Any

from . import __version__, config, devauth, logsafe
from .config import Settings
from .core.errors import ConfigError
from .embedded import Embedded, die_with_parent


def _setup_logging(settings: Settings) -> None:
    """Every log line escaped and free of credentials (see :mod:`tidings.logsafe`)."""
    logsafe.configure(settings.log_level)
    _protect(settings)


def _protect(settings: Settings) -> None:
    logsafe.protect([settings.jwt_secret, *settings.api_keys])


def _use_uvloop() -> None:
    with contextlib.suppress(ImportError):
        import uvloop

        asyncio.set_event_loop_policy(uvloop.EventLoopPolicy())


def _settings(args: argparse.Namespace, *, require_auth: bool = True) -> Settings:
    flags = {f.name: getattr(args, f.name, None) for f in config.options()}
    return config.load(flags=flags, require_auth=require_auth)


def _resolve(settings: Settings, embedded: Embedded | None) -> Settings:
    """Settings with embedded URLs and, on an embedded folder, the dev credentials."""
    settings = replace(settings, dev=settings.dev_mode)
    if embedded is not None:
        settings = replace(settings, database_url=settings.database_url or embedded.database_url,
                           redis_url=settings.redis_url or embedded.redis_url)
    if settings.embedded or embedded is not None:
        secret, key = devauth.load_or_create(settings.data_dir)
        settings = config.with_dev_auth(settings, secret, key)
    return settings


def _start_embedded(settings: Settings) -> Embedded | None:
    if not settings.embedded:
        return None
    return Embedded(settings.data_dir, postgres=settings.embedded_postgres,
                    redis=settings.embedded_redis).start()


def _banner(s: Settings, embedded: Embedded | None) -> str:
    url = f"http://{s.host}:{s.port}"
    lines = [f"Tidings {__version__} listening on {url} ({s.workers} process(es))"]
    if embedded is not None:
        lines.append(f"  embedded data in {s.data_dir}/ (PostgreSQL and Redis stop with Ctrl-C)")
    lines.append("  a user token:    tidings token alice")
    if s.dev_mode:
        lines.append("  producer key:    tidings token --producer")
        lines.append(f"  demo inbox:      {url}/")
        if not config.is_loopback(s.host):
            lines.append(f"  WARNING: dev mode on {s.host}: anyone who reaches this port gets a"
                         " token for any user (/api/v1/dev/token); set TIDINGS_DEV=false")
    lines.append(f"  API description: {url}/api/v1/openapi.json")
    return "\n".join(lines)


def cmd_serve(args: argparse.Namespace) -> int:
    settings = _settings(args)
    _setup_logging(settings)
    embedded = _start_embedded(settings)
    try:
        settings = _resolve(settings, embedded)
        _protect(settings)
        if settings.migrate:
            asyncio.run(_migrate(settings))
        if settings.workers > 1:
            return _serve_workers(settings, embedded)
        _run_node(settings, _banner(settings, embedded), reuse_port=False)
        return 0
    finally:
        if embedded is not None:
            embedded.stop()


def _raise_open_files() -> None:
    """Each socket is a file: lift the soft open-files limit to the hard one."""
    with contextlib.suppress(ValueError, OSError):
        _soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
        resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))


def _tune_gc() -> None:
    """Young collections every 20,000 allocations; what is loaded at start frozen out.

    With Python's default thresholds (700, 10, 10) the temporaries of a large
    broadcast outlive two young collections, land in the oldest generation and
    set off full collections of every socket's objects: about 0.5 s at 10,000
    sockets, every other 10,000-recipient broadcast. With these, they die young.
    """
    gc.collect()
    gc.freeze()
    gc.set_threshold(20_000, 50, 10)


def _run_node(settings: Settings, banner: str | None, *, reuse_port: bool) -> None:
    from aiohttp import web

    from .app import create_app

    _raise_open_files()
    _use_uvloop()
    _tune_gc()
    web.run_app(
        create_app(replace(settings, migrate=False)), host=settings.host, port=settings.port,
        reuse_port=reuse_port, access_log=None, shutdown_timeout=10,
        print=(lambda _: print(banner, flush=True)) if banner else None,
    )


def _serve_workers(settings: Settings, embedded: Embedded | None) -> int:
    """N node processes on one port (SO_REUSEPORT); signals are passed on to them."""
    env = dict(os.environ)
    env.update(config.to_env(replace(settings, workers=1, migrate=False, node_id=None,
                                     dev=settings.dev_mode)))
    children = [
        subprocess.Popen([sys.executable, "-m", "tidings", "_node"], env=env,
                         preexec_fn=die_with_parent)
        for _ in range(settings.workers)
    ]

    def forward(signum: int, _frame: Any) -> None:
        for child in children:
            if child.poll() is None:
                child.send_signal(signal.SIGTERM)

    signal.signal(signal.SIGINT, forward)
    signal.signal(signal.SIGTERM, forward)
    print(_banner(settings, embedded), flush=True)
    codes = [child.wait() for child in children]
    return max(codes, default=0)


def cmd_node(args: argparse.Namespace) -> int:
    """One worker process of ``serve --workers N`` (internal)."""
    settings = _settings(args)
    _setup_logging(settings)
    _run_node(settings, None, reuse_port=True)
    return 0


async def _migrate(settings: Settings) -> list[str]:
    from .store import db, migrate

    pool = await db.create_pool(settings.database_url, min_size=1, max_size=1)
    try:
        async with pool.acquire() as conn:
            return await migrate.apply(conn)
    finally:
        await pool.close()


def cmd_migrate(args: argparse.Namespace) -> int:
    settings = _settings(args, require_auth=False)
    embedded = (Embedded(settings.data_dir, redis=False).start()
                if settings.embedded_postgres else None)
    try:
        settings = _resolve(settings, embedded)
        applied = asyncio.run(_migrate(settings))
    finally:
        if embedded is not None:
            embedded.stop()
    print("\n".join(f"applied {name}" for name in applied) or "schema is up to date")
    return 0


def cmd_token(args: argparse.Namespace) -> int:
    from .auth import mint

    settings = _resolve(_settings(args, require_auth=False), None)
    if args.producer:
        if not settings.api_keys:
            raise ConfigError("TIDINGS_API_KEYS", "no producer key is set")
        print(settings.api_keys[0])
        return 0
    if not args.user:
        raise ConfigError("USER", "name the user: tidings token alice")
    if not settings.jwt_secret:
        raise ConfigError("TIDINGS_JWT_SECRET", "tokens for public-key verification are minted"
                          " by your identity provider, not by tidings")
    print(mint(settings.jwt_secret, args.user, args.ttl, audience=settings.jwt_audience,
               issuer=settings.jwt_issuer))
    return 0


def cmd_worker(args: argparse.Namespace) -> int:
    """Run push workers alone (``tidings serve`` also runs them unless told not to)."""
    settings = _settings(args, require_auth=False)
    if settings.embedded_postgres:
        raise ConfigError("TIDINGS_DATABASE_URL", "tidings worker needs TIDINGS_DATABASE_URL"
                          " (TIDINGS_REDIS_URL only for the per-device throttle); on the"
                          " embedded default, tidings serve runs the push workers itself")
    _setup_logging(settings)
    _use_uvloop()
    _tune_gc()

    async def work() -> None:
        from .app import push_worker
        from .bus import connect
        from .store import db

        _raise_open_files()  # one file per provider connection
        pool = await db.create_pool(settings.database_url or "")
        redis = connect.client(settings.redis_url) if settings.redis_url else None
        worker, registry = push_worker(settings, redis, pool)
        loop = asyncio.get_running_loop()
        for sig in (signal.SIGINT, signal.SIGTERM):
            loop.add_signal_handler(sig, worker.stop)
        print("push worker running; Ctrl-C stops it", flush=True)
        try:
            await worker.run(burst=args.burst)
        finally:
            await registry.close()
            if redis is not None:
                await redis.aclose()
            await pool.close()

    asyncio.run(work())
    return 0


def _api_target(args: argparse.Namespace) -> tuple[str, str]:
    settings = _resolve(_settings(args, require_auth=False), None)
    url = args.url or f"http://{settings.host}:{settings.port}"
    key = args.api_key or os.environ.get("TIDINGS_API_KEY") or (
        settings.api_keys[0] if settings.api_keys else None)
    if not key:
        raise ConfigError("TIDINGS_API_KEY", "a producer API key is needed (--api-key)")
    return url.rstrip("/"), key


def _push_body(args: argparse.Namespace) -> tuple[str, dict[str, Any]]:
    """The path and body of ``tidings push``: one publish, or ``--batch FILE`` (a JSON array
    of publishes, or an object with ``notifications``)."""
    import json

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
    import json
    import urllib.error
    import urllib.request

    url, key = _api_target(args)
    path, body = _push_body(args)
    request = urllib.request.Request(
        f"{url}{path}", data=json.dumps(body).encode(), method="POST",
        headers={"Authorization": f"Bearer {key}", "Content-Type": "application/json"})
    try:
        with urllib.request.urlopen(request, timeout=30) as resp:
            answer = resp.read().decode()
    except urllib.error.HTTPError as exc:
        print(f"tidings push: {exc.code} {exc.read().decode()}", file=sys.stderr)
        return 1
    except urllib.error.URLError as exc:
        print(f"tidings push: cannot reach {url} ({exc.reason})", file=sys.stderr)
        return 1
    print(answer)
    results = json.loads(answer).get("results", [])
    return 1 if any(r["status"] >= 400 for r in results) else 0


def cmd_listen(args: argparse.Namespace) -> int:
    """Print a user's live notifications as JSON lines (resumes after disconnects)."""
    from .auth import mint
    from .client import Closed, Subscriber

    settings = _resolve(_settings(args, require_auth=False), None)
    token = args.token
    if token is None:
        if not settings.jwt_secret:
            raise ConfigError("--token", "give a user token (no HS256 secret to mint one)")
        token = mint(settings.jwt_secret, args.user, 3600, audience=settings.jwt_audience,
                     issuer=settings.jwt_issuer)
    url = args.url or f"http://{settings.host}:{settings.port}"

    async def listen() -> None:
        import orjson

        async for message in Subscriber(url, token, since=args.since):
            print(orjson.dumps(message).decode(), flush=True)

    try:
        asyncio.run(listen())
    except Closed as exc:
        print(f"tidings listen: closed {exc}", file=sys.stderr)
        return 1
    return 0


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="tidings", description="Tidings notification server")
    parser.add_argument("--version", action="version", version=f"tidings {__version__}")
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    serve = sub.add_parser("serve", help="run the server (embedded PostgreSQL/Redis when no URL)")
    config.add_flags(serve)
    serve.set_defaults(func=cmd_serve)

    node = sub.add_parser("_node")
    config.add_flags(node)
    node.set_defaults(func=cmd_node)

    mig = sub.add_parser("migrate", help="apply pending database migrations and exit")
    config.add_flags(mig, ["database_url", "data_dir", "log_level"])
    mig.set_defaults(func=cmd_migrate)

    token = sub.add_parser("token", help="print a user token (or, --producer, the API key)")
    token.add_argument("user", nargs="?", help="user id (the token's sub claim)")
    token.add_argument("--ttl", type=int, default=3600, help="lifetime in seconds (3600)")
    token.add_argument("--producer", action="store_true", help="print the producer API key")
    config.add_flags(token, ["data_dir", "jwt_secret", "jwt_audience", "jwt_issuer", "api_keys"])
    token.set_defaults(func=cmd_token)

    worker = sub.add_parser("worker", help="run push workers (needs the database URL)")
    worker.add_argument("--burst", action="store_true", help="send what is due, then exit")
    config.add_flags(worker, ["database_url", "redis_url", "push_config", "push_max_attempts",
                              "push_device_per_minute", "push_lease", "push_backoff_base",
                              "push_backoff_cap", "log_level"])
    worker.set_defaults(func=cmd_worker)

    push = sub.add_parser("push", help="send one notification with a push via a running server")
    push.add_argument("--batch", metavar="FILE",
                      help="publish the JSON array of publishes in FILE in one request")
    push.add_argument("--user", action="append",
                      help="recipient user id (repeat for several)")
    push.add_argument("--message", help="the notification text")
    push.add_argument("--title", help="title")
    push.add_argument("--badge", type=int, help="app icon badge (APNs)")
    push.add_argument("--sound", help="sound name")
    push.add_argument("--extra", help="JSON object of custom payload keys")
    push.add_argument("--when", default="always",
                      choices=["always", "offline", "never"], help="push policy (always)")
    push.add_argument("--no-persist", action="store_true", help="live only: store nothing")
    push.add_argument("--url", help="server URL (default http://HOST:PORT of the settings)")
    push.add_argument("--api-key", help="producer API key (default TIDINGS_API_KEY, dev key)")
    config.add_flags(push, ["data_dir", "host", "port", "api_keys"])
    push.set_defaults(func=cmd_push)

    listen = sub.add_parser("listen", help="print a user's live notifications")
    listen.add_argument("--user", required=True, help="user id")
    listen.add_argument("--token", help="user token (default: minted with the dev secret)")
    listen.add_argument("--since", type=int, help="replay notifications after this seq")
    listen.add_argument("--url", help="server URL (default http://HOST:PORT of the settings)")
    config.add_flags(listen, ["data_dir", "host", "port", "jwt_secret", "jwt_audience",
                              "jwt_issuer"])
    listen.set_defaults(func=cmd_listen)
    return parser


def main(argv: list[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    try:
        return args.func(args)
    except ConfigError as exc:
        print(f"tidings: configuration error: {exc}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        return 130
