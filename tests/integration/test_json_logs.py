"""``TIDINGS_LOG_FORMAT=json``: a real node process logs one JSON object per line, with the
request, user and node ids where they are known, and no credential."""

from __future__ import annotations

import asyncio
import json
import os
import re
import signal
import subprocess
import sys
from dataclasses import replace

import aiohttp

from tidings import config
from tidings.embedded import free_port

from helpers import API_KEY, PRODUCER, healthy, new_user, token

NODE = "json-node-1"


async def test_json_lines_with_request_user_and_node_ids(settings, tmp_path):
    port = free_port()
    node = replace(settings, port=port, workers=1, migrate=False, node_id=NODE,
                   log_format="json", log_level="DEBUG")
    env = {k: v for k, v in os.environ.items() if not k.startswith("TIDINGS_")}
    env.update(config.to_env(node))
    url = f"http://127.0.0.1:{port}"
    user = new_user("json")
    jwt = token(user)
    log_file = tmp_path / "node.log"
    with log_file.open("wb") as err:
        proc = subprocess.Popen([sys.executable, "-m", "tidings", "_node"], env=env,
                                stderr=err)
    try:
        await healthy(url, proc)
        async with aiohttp.ClientSession() as http:
            async with http.get(f"{url}/api/v1/me/notifications?token={jwt}",
                                headers={"Authorization": f"Bearer {jwt}",
                                         "X-Request-Id": "req-abc-123"}) as r:
                assert r.status == 200 and r.headers["X-Request-Id"] == "req-abc-123"
            async with http.post(f"{url}/api/v1/notifications", headers=PRODUCER,
                                 json={"recipients": [user], "message": "hi"}) as r:
                assert r.status == 201
                publish_id = r.headers["X-Request-Id"]
                assert re.fullmatch(r"[0-9a-f]{16}", publish_id)
            async with http.ws_connect(f"{url}/ws/me/notifications",
                                       headers={"Authorization": f"Bearer {jwt}",
                                                "X-Request-Id": "ws-req-7"}) as ws:
                assert (await ws.receive_json())["type"] == "counts"
                await ws.close()
            async with http.get(f"{url}/api/v1/me/devices/{jwt}") as r:
                assert r.status == 401
    finally:
        proc.send_signal(signal.SIGTERM)
        assert await asyncio.to_thread(proc.wait, 30) == 0

    text = log_file.read_text()
    assert jwt not in text and jwt.split(".")[1] not in text and API_KEY not in text
    lines = [json.loads(line) for line in text.splitlines()]  # every line is one object
    assert lines and all({"time", "level", "logger", "message"} <= set(line) for line in lines)

    def one(message: str) -> dict[str, str]:
        found = [line for line in lines if line["message"].startswith(message)]
        assert len(found) == 1, (message, [line["message"] for line in lines])
        return found[0]

    read = one("GET /api/v1/me/notifications 200 ")
    assert (read["request_id"], read["user_id"], read["node_id"]) == ("req-abc-123", user, NODE)
    assert read["logger"] == "tidings.api.http" and read["level"] == "DEBUG"
    publish = one("POST /api/v1/notifications 201 ")
    assert (publish["request_id"], publish["node_id"]) == (publish_id, NODE)
    assert "user_id" not in publish, "a producer is no user"
    closed = one("socket closed")  # a socket keeps no request id: its user and node
    assert (closed["user_id"], closed["node_id"]) == (user, NODE)
    refused = one("GET /api/v1/me/devices/{token} 401 ")  # the route, never the path
    assert refused["node_id"] == NODE and "user_id" not in refused
