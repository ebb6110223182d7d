"""The data folder of ``tidings serve``: its lock and the running server's address.

What may live here: the files a running server leaves in its data folder for
the other commands. ``serve.lock`` is held (``flock``) by the one process that
serves from the folder; it names that process, so a second ``serve`` can say
who holds it. ``server.json`` holds the running server's URL and process id:
``listen``, ``push`` and ``devices`` read it to find the server. The lock is
released by the kernel when its process dies, however it dies; an address
whose process is gone is ignored.
"""

from __future__ import annotations

import contextlib
import fcntl
import json
import os
from pathlib import Path

LOCK = "serve.lock"
ADDRESS = "server.json"


class FolderInUse(Exception):
    """Another process serves from this data folder."""

    def __init__(self, folder: Path, holder: str):
        super().__init__(f"{folder} is in use by {holder}")
        self.folder = folder
        self.holder = holder


class Lock:
    """An exclusive lock on a data folder, for as long as this process holds it."""

    def __init__(self, folder: Path):
        self.folder = folder
        self._fd: int | None = None

    def acquire(self) -> None:
        """Take the lock, or raise :class:`FolderInUse` naming the holding process."""
        path = self.folder / LOCK
        fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o600)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            holder = Path(path).read_text().strip() or "another process"
            os.close(fd)
            raise FolderInUse(self.folder, holder) from None
        os.ftruncate(fd, 0)
        os.write(fd, f"process {os.getpid()} (tidings serve)\n".encode())
        self._fd = fd

    def release(self) -> None:
        """Let go of the lock; the file stays (unlinking it would let two holders in)."""
        if self._fd is not None:
            os.ftruncate(self._fd, 0)
            os.close(self._fd)
            self._fd = None


def write_address(folder: Path, url: str) -> None:
    """Record that this process serves ``url`` from ``folder`` (replaced atomically)."""
    tmp = folder / (ADDRESS + ".tmp")
    tmp.write_text(json.dumps({"url": url, "pid": os.getpid()}))
    tmp.replace(folder / ADDRESS)


def forget_address(folder: Path) -> None:
    with contextlib.suppress(OSError):
        (folder / ADDRESS).unlink()


def read_address(folder: Path) -> str | None:
    """The URL of the server running from ``folder``, or None if none is."""
    try:
        saved = json.loads((folder / ADDRESS).read_text())
        pid, url = int(saved["pid"]), str(saved["url"])
    except (OSError, ValueError, KeyError, TypeError):
        return None
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return None
    except PermissionError:  # alive, another user's
        pass
    return url
