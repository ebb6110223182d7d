"""Process tuning for serving: open-files limit, garbage collector, event loop."""

from __future__ import annotations

import asyncio
import contextlib
import gc
import resource


def use_uvloop() -> None:
    with contextlib.suppress(ImportError):
        import uvloop

        asyncio.set_event_loop_policy(uvloop.EventLoopPolicy())


def raise_open_files() -> None:
    """Each socket is a file: lift the soft open-files limit to the hard one."""
    with contextlib.suppress(ValueError, OSError):
        _soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
        resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))


def tune_gc() -> None:
    """Young collections every 20,000 allocations; what is loaded at start frozen out.

    With Python's default thresholds (700, 10, 10) the temporaries of a large
    broadcast outlive two young collections, land in the oldest generation and
    set off full collections of every socket's objects: about 0.5 s at 10,000
    sockets, every other 10,000-recipient broadcast. With these, they die young.
    """
    gc.collect()
    gc.freeze()
    gc.set_threshold(20_000, 50, 10)
