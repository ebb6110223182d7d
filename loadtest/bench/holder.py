"""A socket holder: one driver process that holds a share of a scenario's sockets.

Started by :mod:`loadtest.bench.split` as ``python -m loadtest.bench.holder CONFIG``
(CONFIG is JSON: the :class:`~loadtest.bench.targets.Endpoint`, the users' name
prefix, the first index and count of its share, its first loopback source address,
sockets per source, connect concurrency, whether to run on uvloop). Once started it
says ``{"ready": true}`` on stdout, then answers one JSON line per command read from
stdin:

- ``{"cmd": "connect"}``: connects its share: connected, errors, sources, connect times;
- ``{"cmd": "wait", "tag": T, "within": S}``: once every socket has the notification
  tagged T (or S seconds passed): ``{"have": n}``;
- ``{"cmd": "take", "tag": T}``: the ``time.monotonic()`` arrival times of T, then
  forgets them: ``{"arrivals": [...]}``;
- ``{"cmd": "check", "expected": {user: seq}}``: the correctness figures of its sockets;
- ``{"cmd": "close"}``: ``{"open": n}`` (how many were still open), then it closes
  them and exits.

Arrival times are read from CLOCK_MONOTONIC, one clock for every process of the
machine, so the coordinator compares them with its own publish time.
"""

from __future__ import annotations

import asyncio
import sys
from typing import Any

import orjson

from .sockets import Crowd, Sub, Tally, check, users
from .targets import Endpoint


async def serve(config: dict[str, Any]) -> None:
    tally = Tally()
    tally.track_tags = True
    crowd = Crowd(Endpoint(**config["endpoint"]), tally, sources=64,
                  per_source=config["per_source"], first_source=config["first_source"])
    names = users(config["prefix"], config["count"], config["first"])
    subs: list[Sub] = []
    by_user: dict[str, Sub] = {}
    loop = asyncio.get_running_loop()
    reader = asyncio.StreamReader(limit=2 ** 26)
    await loop.connect_read_pipe(lambda: asyncio.StreamReaderProtocol(reader), sys.stdin)
    say({"ready": True})
    while line := await reader.readline():
        cmd = orjson.loads(line)
        if cmd["cmd"] == "connect":
            subs = await crowd.connect(names, config["concurrency"])
            by_user = {s.user: s for s in subs}
            say({"connected": len(crowd.connect_times), "errors": crowd.connect_errors,
                 "sources": len(crowd.sessions), "connect_times": crowd.connect_times})
        elif cmd["cmd"] == "wait":
            say({"have": await tally.wait_tag(cmd["tag"], len(subs), cmd["within"])})
        elif cmd["cmd"] == "take":
            say({"arrivals": tally.by_tag.pop(cmd["tag"], [])})
        elif cmd["cmd"] == "check":
            for user, seq in cmd["expected"].items():
                by_user[user].expected = seq
            say(check(subs))
        elif cmd["cmd"] == "close":
            say({"open": crowd.open_count()})
            break
    await crowd.close()


def say(message: dict[str, Any]) -> None:
    sys.stdout.buffer.write(orjson.dumps(message) + b"\n")
    sys.stdout.buffer.flush()


def main() -> None:
    config = orjson.loads(sys.argv[1])
    if config.get("uvloop"):
        import uvloop

        uvloop.run(serve(config))
    else:
        asyncio.run(serve(config))


if __name__ == "__main__":
    main()
