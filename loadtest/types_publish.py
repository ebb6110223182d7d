#!/usr/bin/env python
"""What a declared type costs a large publish: 10,000 recipients with and without a type.

Against a running server (``--url``, a producer ``--api-key``): declares a type with
push on and a digest off, mints tokens and sets preferences for every other
recipient (push off for the type, quiet hours), then alternates publishes to the
same R recipients without a type and with it, and reports the median request
time of each and the ratio. The publish path applies a type from the node's
copy of the types (no query per publish) and decides preferences when the push
is sent, so the ratio should stay near 1 (the issue's bound: at most 1.25).

Usage::

    python loadtest/types_publish.py --url http://127.0.0.1:8000 --api-key KEY \\
        --recipients 10000 --rounds 5
"""

from __future__ import annotations

import argparse
import asyncio
import statistics
import time
import uuid

import aiohttp


async def _prepare(http: aiohttp.ClientSession, url: str, key: str, kind: str,
                   users: list[str]) -> None:
    producer = {"Authorization": f"Bearer {key}"}
    async with http.put(f"{url}/api/v1/types/{kind}", headers=producer, json={
            "title": "Comments", "channels": {"push": True, "email": False},
            "push": {"when": "offline"}}) as r:
        assert r.status in (200, 201), await r.text()
    sem = asyncio.Semaphore(32)

    async def prefer(user: str) -> None:
        async with sem:
            async with http.post(f"{url}/api/v1/tokens", headers=producer,
                                 json={"user": user}) as r:
                token = (await r.json())["token"]
            async with http.patch(f"{url}/api/v1/me/preferences",
                                  headers={"Authorization": f"Bearer {token}"},
                                  json={"types": {kind: {"channels": {"push": False}}},
                                        "quiet_hours": {"start": "22:00", "end": "07:00"}}
                                  ) as r:
                assert r.status == 200, await r.text()

    await asyncio.gather(*(prefer(u) for u in users[::2]))


async def _publish(http: aiohttp.ClientSession, url: str, key: str, users: list[str],
                   kind: str | None) -> float:
    body = {"recipients": users, "message": "a comment", "data": {"post": 1}}
    if kind is not None:
        body["type"] = kind
    started = time.perf_counter()
    async with http.post(f"{url}/api/v1/notifications", json=body,
                         headers={"Authorization": f"Bearer {key}"}) as r:
        assert r.status == 201, await r.text()
        await r.read()
    return time.perf_counter() - started


async def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--url", required=True)
    ap.add_argument("--api-key", required=True)
    ap.add_argument("--recipients", type=int, default=10_000)
    ap.add_argument("--rounds", type=int, default=5)
    ap.add_argument("--pause", type=float, default=2.0, help="seconds between publishes")
    args = ap.parse_args()
    run = uuid.uuid4().hex[:6]
    kind = f"bench-{run}"
    users = [f"bench-{run}-{i}" for i in range(args.recipients)]
    timeout = aiohttp.ClientTimeout(total=600)
    async with aiohttp.ClientSession(timeout=timeout) as http:
        await _prepare(http, args.url, args.api_key, kind, users)
        await _publish(http, args.url, args.api_key, users, None)  # warm up
        times: dict[str, list[float]] = {"untyped": [], "typed": []}
        for _ in range(args.rounds):
            for label, name in (("untyped", None), ("typed", kind)):
                await asyncio.sleep(args.pause)
                times[label].append(await _publish(http, args.url, args.api_key, users, name))
    medians = {k: statistics.median(v) for k, v in times.items()}
    for label, values in times.items():
        print(f"{label:8} median {medians[label] * 1000:7.1f} ms  "
              f"(runs: {', '.join(f'{v * 1000:.0f}' for v in values)})")
    print(f"typed / untyped: {medians['typed'] / medians['untyped']:.3f}"
          f" ({args.recipients} recipients, preferences set for {len(users[::2])})")


if __name__ == "__main__":
    asyncio.run(main())
