"""The command line: its parser, and how each failure ends.

Exit statuses: 0 done; 1 the server answered with an error (``push``, ``types``); 2 a
bad setting or argument, or something needed that cannot be used (one line
each: see :class:`~.common.Unusable`); 130 Ctrl-C. An unknown flag is
reported with the usage of the command it was given to.
"""

from __future__ import annotations

import argparse
import sys

from .. import __version__, config_help
from ..config import ConfigErrors
from ..core.errors import ConfigError
from . import listen, remote, serve, types, vapid, worker
from .common import Unusable

_WORKER_URLS = {
    "database_url": "PostgreSQL URL (also DATABASE_URL); required here",
    "redis_url": "Redis URL (also REDIS_URL); unset: no per-device throttle",
    "metrics_port": "serve this worker's /metrics here, without a key; default unset (none)",
}


def _command(sub, name: str, func, help: str) -> argparse.ArgumentParser:
    parser = sub.add_parser(name, help=help, description=help)
    parser.set_defaults(func=func, parser=parser)
    return parser


def _remote_flags(parser: argparse.ArgumentParser, names: list[str]) -> None:
    parser.add_argument("--url", help="server URL (default: the address of the tidings serve"
                        " running from the data folder, else http://HOST:PORT)")
    config_help.add_flags(parser, names)


def parser() -> argparse.ArgumentParser:
    top = argparse.ArgumentParser(prog="tidings", description="Tidings notification server")
    top.add_argument("--version", action="version", version=f"tidings {__version__}")
    sub = top.add_subparsers(dest="command", required=True, metavar="COMMAND")

    config_help.add_flags(_command(sub, "serve", serve.cmd_serve,
                              "run the server (embedded PostgreSQL/Redis when no URL)"))
    config_help.add_flags(_command(sub, "migrate", serve.cmd_migrate,
                              "apply pending database migrations and exit"),
                     ["database_url", "data_dir", "log_level"])

    token = _command(sub, "token", remote.cmd_token,
                     "print a user token (or, --producer, the API key)")
    token.add_argument("user", nargs="?", help="user id (the token's sub claim)")
    token.add_argument("--ttl", type=int, default=3600, metavar="SECONDS",
                       help="lifetime in seconds; default 3600")
    token.add_argument("--producer", action="store_true", help="print the producer API key")
    config_help.add_flags(token, ["data_dir", "jwt_secret", "jwt_audience", "jwt_issuer",
                                  "api_keys"])

    devices = sub.add_parser("devices", help="register a push device for a user")
    devices_sub = devices.add_subparsers(dest="action", required=True, metavar="ACTION")
    add = _command(devices_sub, "add", remote.cmd_devices_add,
                   "register a device for a user on a running server; its pushes then go to"
                   " the server's push providers (on the embedded default, its output)")
    add.add_argument("--user", required=True, help="user id")
    add.add_argument("--platform", choices=["apns", "fcm", "webpush"], default="apns",
                     help="device platform (default apns; webpush needs --subscription)")
    add.add_argument("--device", help="device token of apns or fcm (default: a made-up one)")
    add.add_argument("--subscription", metavar="JSON|@FILE",
                     help="webpush: the browser's subscription, {\"endpoint\": ..., \"keys\":"
                          " {\"p256dh\": ..., \"auth\": ...}} as PushSubscription.toJSON()"
                          " gives it, inline or @ a file holding it")
    add.add_argument("--name", default="tidings devices add", help="device name")
    add.add_argument("--token", help="user token (default: minted with the dev secret)")
    _remote_flags(add, ["data_dir", "host", "port", "jwt_secret", "jwt_audience", "jwt_issuer"])

    wrk = _command(sub, "worker", worker.cmd_worker,
                   "run push workers (needs TIDINGS_DATABASE_URL: no embedded servers)")
    wrk.add_argument("--burst", action="store_true", help="send what is due, then exit")
    config_help.add_flags(wrk, ["database_url", "redis_url", "push_config", "push_max_attempts",
                           "push_device_per_minute", "push_lease", "push_backoff_base",
                           "push_backoff_cap", "metrics", "metrics_port", "metrics_host",
                           "log_level", "log_format"], help=_WORKER_URLS)

    push = _command(sub, "push", remote.cmd_push,
                    "send one notification with a push (or a batch) via a running server")
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
    push.add_argument("--api-key", help="producer API key (default TIDINGS_API_KEY, dev key)")
    _remote_flags(push, ["data_dir", "host", "port", "api_keys"])

    kinds = sub.add_parser("types", help="list or load notification types")
    kinds_sub = kinds.add_subparsers(dest="action", required=True, metavar="ACTION")
    for name, func, text in (
            ("list", types.cmd_types_list, "print the types a running server declares"),
            ("load", types.cmd_types_load,
             "create or replace the types of a JSON file ({name: definition}) on a running"
             " server")):
        cmd = _command(kinds_sub, name, func, text)
        if name == "load":
            cmd.add_argument("file", metavar="FILE", help="the types file (e.g. types.json)")
        cmd.add_argument("--api-key",
                         help="producer API key (default TIDINGS_API_KEY, dev key)")
        _remote_flags(cmd, ["data_dir", "host", "port", "api_keys"])

    keys = _command(sub, "vapid", vapid.cmd_vapid,
                    "print a new Web Push (VAPID) key pair as settings lines")
    keys.add_argument("--subject", default="mailto:you@example.com",
                      help="TIDINGS_VAPID_SUBJECT to print: a mailto: or https: URL")

    lst = _command(sub, "listen", listen.cmd_listen, "print a user's live notifications")
    lst.add_argument("--user", required=True, help="user id")
    lst.add_argument("--token", help="user token (default: minted with the dev secret)")
    lst.add_argument("--since", type=int, help="replay notifications after this seq")
    _remote_flags(lst, ["data_dir", "host", "port", "jwt_secret", "jwt_audience", "jwt_issuer"])
    return top


def _node_parser() -> argparse.ArgumentParser:
    """``tidings _node``: one process of ``serve --workers N``; not listed anywhere."""
    node = argparse.ArgumentParser(prog="tidings _node")
    config_help.add_flags(node)
    node.set_defaults(func=serve.cmd_node)
    return node


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    if argv[:1] == ["_node"]:
        args = _node_parser().parse_args(argv[1:])
    else:
        args, extra = parser().parse_known_args(argv)
        if extra:
            args.parser.error(f"unrecognized arguments: {' '.join(extra)}")
    try:
        return args.func(args)
    except ConfigError as exc:
        problems = exc.problems if isinstance(exc, ConfigErrors) else [exc]
        for problem in problems:
            print(f"tidings: configuration error: {problem}", file=sys.stderr)
        return 2
    except Unusable as exc:
        print(f"tidings: {exc}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        return 130
