"""`tidings types list` and `tidings types load` against a running node."""

from __future__ import annotations

import asyncio
import json
import os
import subprocess
import sys
import uuid

from helpers import API_KEY


def _run(*args: str) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("TIDINGS_")}
    return subprocess.run([sys.executable, "-m", "tidings", *args], env=env,
                          capture_output=True, text=True, timeout=60)


async def test_types_are_loaded_from_a_file_and_listed(node, tmp_path):
    good, bad = f"cli-{uuid.uuid4().hex[:6]}", f"cli-{uuid.uuid4().hex[:6]}"
    path = tmp_path / "types.json"
    path.write_text(json.dumps({
        good: {"title": "Comments", "channels": {"push": True}, "digest": {"window": 300}},
        bad: {"title": "Broken", "templates": {"push": {"body": "{{ nope }}"}}}}))
    loaded = await asyncio.to_thread(_run, "types", "load", str(path), "--url", node.url,
                                     "--api-key", API_KEY)
    assert loaded.returncode == 1  # one refused
    assert json.loads(loaded.stdout.splitlines()[0])["name"] == good
    assert f"types load: {bad}: 400" in loaded.stderr and "invalid_template" in loaded.stderr
    listed = await asyncio.to_thread(_run, "types", "list", "--url", node.url,
                                     "--api-key", API_KEY)
    assert listed.returncode == 0, listed.stderr
    names = {t["name"]: t for t in json.loads(listed.stdout)["types"]}
    assert names[good]["digest"] == {"window": 300} and bad not in names
    path.write_text("[1, 2]")
    wrong = await asyncio.to_thread(_run, "types", "load", str(path), "--url", node.url,
                                    "--api-key", API_KEY)
    assert wrong.returncode == 2 and "types file" in wrong.stderr
