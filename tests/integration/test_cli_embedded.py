"""`tidings serve` on the embedded default, as a newcomer runs it: start, use, Ctrl-C, rerun."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
import urllib.request

import psutil
import pytest

from tidings.embedded import free_port


def _tidings(*args: str, cwd, env=None) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "tidings", *args], cwd=cwd, env=env,
                          capture_output=True, text=True, timeout=60)


def _clean_env() -> dict[str, str]:
    return {k: v for k, v in os.environ.items()
            if not k.startswith("TIDINGS_") and k not in ("DATABASE_URL", "REDIS_URL")}


def _start(tmp_path, port):
    proc = subprocess.Popen(
        [sys.executable, "-m", "tidings", "serve", "--port", str(port)], cwd=tmp_path,
        env=_clean_env(), stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    banner = []
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        line = proc.stdout.readline()
        if not line:
            break
        banner.append(line)
        if "openapi.json" in line:
            return proc, "".join(banner)
    proc.kill()
    pytest.fail("server did not start:\n" + "".join(banner))


def _call(method, url, token, body=None):
    req = urllib.request.Request(url, method=method, data=json.dumps(body).encode()
                                 if body is not None else None,
                                 headers={"Authorization": f"Bearer {token}",
                                          "Content-Type": "application/json"})
    with urllib.request.urlopen(req, timeout=10) as resp:
        return resp.status, json.loads(resp.read())


def _children(proc: subprocess.Popen[str]) -> list[psutil.Process]:
    return psutil.Process(proc.pid).children(recursive=True)


def _stragglers(data_dir) -> list[psutil.Process]:
    found = []
    for p in psutil.process_iter(["cmdline"]):
        try:
            if any(str(data_dir) in part for part in (p.info["cmdline"] or [])):
                found.append(p)
        except psutil.Error:
            pass
    return found


def test_serve_embedded_token_publish_ctrl_c_and_rerun(tmp_path):
    port = free_port()
    proc, banner = _start(tmp_path, port)
    try:
        assert f"http://127.0.0.1:{port}" in banner and "tidings token alice" in banner
        base = f"http://127.0.0.1:{port}"
        user_token = _tidings("token", "alice", cwd=tmp_path, env=_clean_env()).stdout.strip()
        key = _tidings("token", "--producer", cwd=tmp_path, env=_clean_env()).stdout.strip()
        assert user_token.count(".") == 2 and key
        status, _ = _call("POST", f"{base}/api/v1/notifications", key,
                             {"recipients": ["alice"], "message": "first run"})
        assert status == 201
        status, page = _call("GET", f"{base}/api/v1/me/notifications", user_token)
        assert page["total_notifications"] == 1
        assert (tmp_path / ".tidings" / "dev-auth.json").stat().st_mode & 0o777 == 0o600
    finally:
        proc.send_signal(signal.SIGINT)
        assert proc.wait(30) == 0
    data_dir = (tmp_path / ".tidings").resolve()
    deadline = time.monotonic() + 10
    while _stragglers(data_dir) and time.monotonic() < deadline:
        time.sleep(0.1)
    assert _stragglers(data_dir) == [], "Ctrl-C left processes behind"

    proc, _ = _start(tmp_path, port)
    try:
        user_token = _tidings("token", "alice", cwd=tmp_path, env=_clean_env()).stdout.strip()
        status, page = _call("GET", f"http://127.0.0.1:{port}/api/v1/me/notifications",
                             user_token)
        assert [n["notification"]["message"] for n in page["notifications"]] == ["first run"]
    finally:
        proc.send_signal(signal.SIGINT)
        assert proc.wait(30) == 0


def test_bad_setting_is_one_clear_line(tmp_path):
    env = {**_clean_env(), "TIDINGS_PORT": "not-a-port"}
    result = _tidings("serve", cwd=tmp_path, env=env)
    assert result.returncode == 2
    assert result.stderr.strip().splitlines() == [
        "tidings: configuration error: TIDINGS_PORT: 'not-a-port': must be a port number"
        " from 0 to 65535"]
    env = {**_clean_env(), "TIDINGS_DATABASE_URL": "postgresql://x/y",
           "TIDINGS_REDIS_URL": "redis://x"}
    result = _tidings("serve", cwd=tmp_path, env=env)
    assert result.returncode == 2 and "TIDINGS_JWT_SECRET" in result.stderr


def test_every_command_has_help(tmp_path):
    for command in (["serve"], ["migrate"], ["token"], ["push"], ["worker"], ["listen"],
                    ["devices", "add"]):
        result = _tidings(*command, "--help", cwd=tmp_path)
        assert result.returncode == 0 and "usage: tidings" in result.stdout, command
        assert "VALUE" not in result.stdout, command
    assert "embedded" not in _tidings("worker", "--help", cwd=tmp_path).stdout.split(
        "--database-url URL")[1].split("--push-config")[0]


def test_unknown_command_and_flag_are_told_plainly(tmp_path):
    bogus = _tidings("bogus", cwd=tmp_path, env=_clean_env())
    assert bogus.returncode == 2 and "_node" not in bogus.stderr and "'serve'" in bogus.stderr
    typo = _tidings("serve", "--prot", "1", cwd=tmp_path, env=_clean_env())
    assert typo.returncode == 2
    assert typo.stderr.startswith("usage: tidings serve ") and "--prot" in typo.stderr
    assert list(tmp_path.iterdir()) == []
