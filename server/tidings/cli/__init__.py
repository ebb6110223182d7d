"""The ``tidings`` command: serve, migrate, token, devices, push, listen, worker, vapid.

Modules: :mod:`.parsing` (arguments, exit statuses), :mod:`.common` (settings
and logging), :mod:`.tuning` (process limits, GC, event loop),
:mod:`.folder` (the embedded data folder's lifecycle), :mod:`.reach`
(PostgreSQL, Redis and the port, checked before serving), :mod:`.serve`,
:mod:`.worker`, :mod:`.vapid` (Web Push keys), and :mod:`.remote` (the small
HTTP and socket clients of ``push``, ``listen`` and ``devices``). Every
expected failure ends in one line naming the setting and exit status 2.
"""

from .parsing import main

__all__ = ["main"]
