"""The ``tidings`` command: serve, migrate, token, devices, push, listen, types, worker, vapid.

Every expected failure ends in one line naming the setting and exit status 2.

Modules:

- ``parsing``: the command line, its parser, and how each failure ends.
- ``common``: settings and logging every command shares.
- ``tuning``: process limits, garbage collector, event loop.
- ``folder``: the embedded data folder's lifecycle.
- ``reach``: PostgreSQL, Redis and the port, checked before serving.
- ``serve``: ``serve`` (and its node processes) and ``migrate``.
- ``worker``: push and e-mail workers on their own.
- ``vapid``: a new Web Push key pair.
- ``remote``: ``push``, ``devices add``, ``token``; where the server is, one HTTP call.
- ``listen``: a user's live notifications as JSON lines.
- ``types``: notification types on a running server.
"""

from .parsing import main

__all__ = ["main"]
