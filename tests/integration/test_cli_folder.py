"""Commands that find their server: the address ``serve`` leaves in its data folder, and its lock.

One embedded ``tidings serve`` on a port other than the default, then, in the
same folder with nothing in the environment: a second ``serve`` (refused),
``listen``, ``devices add`` and ``push``, as in the README's quick start.
"""

from __future__ import annotations

import asyncio
import json
import os
import queue
import signal
import subprocess
import sys
import threading
import time

import pytest

from tidings.embedded import free_port


def _env() -> dict[str, str]:
    return {k: v for k, v in os.environ.items()
            if not k.startswith("TIDINGS_") and k not in ("DATABASE_URL", "REDIS_URL")}


class Lines:
    """A process's output lines, read on a thread, waited for with a deadline."""

    def __init__(self, stream) -> None:
        self.seen: list[str] = []
        self._q: queue.Queue[str] = queue.Queue()
        threading.Thread(target=self._pump, args=(stream,), daemon=True).start()

    def _pump(self, stream) -> None:
        for line in stream:
            self._q.put(line.rstrip("\n"))

    def wait_for(self, predicate, timeout: float = 30) -> str:
        deadline = time.monotonic() + timeout
        while True:
            try:
                line = self._q.get(timeout=max(0.0, deadline - time.monotonic()))
            except queue.Empty:
                pytest.fail("not seen; output so far:\n" + "\n".join(self.seen))
            self.seen.append(line)
            if predicate(line):
                return line


def _popen(cwd, *args: str, stderr=subprocess.STDOUT) -> subprocess.Popen[str]:
    return subprocess.Popen([sys.executable, "-m", "tidings", *args], cwd=cwd, env=_env(),
                            stdout=subprocess.PIPE, stderr=stderr, text=True)


async def _open_socket_offering(url: str, token: str) -> None:
    from websockets.asyncio.client import connect

    async with connect(url, subprotocols=["chat"],
                       additional_headers={"Authorization": f"Bearer {token}"}) as ws:
        assert json.loads(await ws.recv())["type"] == "counts"


def _run(cwd, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "tidings", *args], cwd=cwd, env=_env(),
                          capture_output=True, text=True, timeout=60)


def test_commands_find_the_server_and_the_folder_is_locked(tmp_path):
    port = free_port()
    server = _popen(tmp_path, "serve", "--port", str(port))
    out = Lines(server.stdout)
    listener = None
    try:
        out.wait_for(lambda line: "openapi.json" in line, 60)
        address = json.loads((tmp_path / ".tidings" / "server.json").read_text())
        assert address == {"url": f"http://127.0.0.1:{port}", "pid": server.pid}

        second = _run(tmp_path, "serve", "--port", str(free_port()))
        assert second.returncode == 2
        assert second.stderr.strip().splitlines() == [
            f"tidings: TIDINGS_DATA_DIR: the data folder .tidings is in use by process"
            f" {server.pid} (tidings serve); stop it, or use another --data-dir"]

        listener = _popen(tmp_path, "listen", "--user", "alice", stderr=subprocess.PIPE)
        said = Lines(listener.stderr)
        heard = Lines(listener.stdout)
        first = said.wait_for(lambda line: "connecting to" in line)
        assert f"http://127.0.0.1:{port}" in first and "server.json" in first
        assert json.loads(heard.wait_for(bool))["type"] == "counts"
        said.wait_for(lambda line: line.endswith("connected"))

        device = _run(tmp_path, "devices", "add", "--user", "alice")
        assert device.returncode == 0, device.stderr
        device_token = json.loads(device.stdout)["token"]
        pushed = _run(tmp_path, "push", "--user", "alice", "--message", "Hello", "--badge", "1")
        assert pushed.returncode == 0, pushed.stderr

        live = json.loads(heard.wait_for(bool))
        assert live["notification"]["notification"]["message"] == "Hello"
        payload = json.loads(out.wait_for(lambda line: line.startswith('{"platform"')))
        assert payload["payload"]["aps"] == {"alert": {"body": "Hello"}, "badge": 1}
        assert payload["platform"] == "apns" and device_token

        # A socket offering a subprotocol that is not a token: no warning in the server's log.
        asyncio.run(_open_socket_offering(f"ws://127.0.0.1:{port}/ws/me/notifications",
                                          _run(tmp_path, "token", "alice").stdout.strip()))
        _run(tmp_path, "push", "--user", "alice", "--message", "After")
        out.wait_for(lambda line: '"body":"After"' in line)
        assert not [line for line in out.seen if "protocols" in line], out.seen
    finally:
        if listener is not None:
            listener.terminate()
            listener.wait(10)
        server.send_signal(signal.SIGINT)
        assert server.wait(30) == 0
    assert not (tmp_path / ".tidings" / "server.json").exists()
    restarted = _popen(tmp_path, "serve", "--port", str(port))
    try:
        Lines(restarted.stdout).wait_for(lambda line: "openapi.json" in line, 60)
    finally:
        restarted.send_signal(signal.SIGINT)
        assert restarted.wait(30) == 0


def test_listen_says_why_it_retries(tmp_path):
    port = free_port()
    listener = _popen(tmp_path, "listen", "--user", "alice", "--url",
                      f"http://127.0.0.1:{port}", "--jwt-secret", "j" * 40,
                      stderr=subprocess.PIPE)
    try:
        said = Lines(listener.stderr)
        said.wait_for(lambda line: f"connecting to http://127.0.0.1:{port}" in line)
        line = said.wait_for(lambda line: "retrying" in line)
        assert "connection refused" in line
    finally:
        listener.terminate()
        listener.wait(10)
    assert list(tmp_path.iterdir()) == []
