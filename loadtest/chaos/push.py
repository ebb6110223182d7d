"""Push scenarios (the publish-faults issue): offline users, fake APNs and FCM, a fault mid-run.

The fakes (``tests/fakes``: the real HTTP/2 APNs protocol over TLS, the real FCM
HTTP v1 API with OAuth2) run in the driver's process, answer after ``DELAY``
seconds so sends are in flight when a fault strikes, and record every send and
when it arrived. Each push user registers one device through the API (half APNs,
half FCM) and holds no socket, so every acknowledged notification owes exactly
one push. After the stream and the fault, the run waits until every owed push was
sent (or ``TAKEOVER`` seconds after the fault, and at least 2 s after the stream),
then counts: owed, pushed (answered 200),
missing, duplicates (sends of a notification to a device beyond the first),
the in-flight bound (sends the fakes received in the half second before the
kill, answered or not: at most these may be repeated), and sends whose collapse
id is not the notification's uid, and owed pushes with no attempt in the
notification's delivery log (``GET /api/v1/notifications/{uid}/deliveries``).
"""

from __future__ import annotations

import asyncio
import json
import secrets
import signal
import time
import uuid
from collections import Counter
from pathlib import Path
from typing import Any

import aiohttp
from tests.fakes.fake_apns import FakeAPNs, make_p8, make_tls
from tests.fakes.fake_fcm import FakeFCM, make_service_account

from .cluster import API_KEY, Cluster
from .producer import Producer
from .run import Size, stored_seqs
from .servers import Postgres
from .sockets import user_token
from .verdict import Figures, judge

DELAY = 0.1  # seconds each fake send takes
TAKEOVER = 17.0  # most seconds owed pushes get after the fault (the contract says 15)
WINDOW = 0.5  # seconds before a kill whose sends count as in flight
TEAM, KEY_ID, TOPIC, PROJECT = "TEAM123456", "KEY1234567", "com.example.chaos", "chaos"


class _Timed:
    """Arrival times and sends in progress, for the fakes below."""

    def _begin(self) -> None:
        self.arrivals.append(time.monotonic())  # type: ignore[attr-defined]
        self.busy += 1  # type: ignore[has-type]


class SlowAPNs(_Timed, FakeAPNs):
    async def _handle(self, conn: Any, stream_id: int, headers: dict[str, str],
                      body: bytes) -> None:
        self._begin()
        try:
            await asyncio.sleep(DELAY)
            await super()._handle(conn, stream_id, headers, body)
        finally:
            self.busy -= 1

    def sends(self) -> list[tuple[str, str, str | None, int | None]]:
        """(uid, device token, collapse id, status) of every request."""
        return [(json.loads(r.body).get("uid", ""), r.token, r.headers.get("apns-collapse-id"),
                 r.status) for r in self.requests]


class SlowFCM(_Timed, FakeFCM):
    async def _send(self, request: Any) -> Any:
        await request.read()  # the body is kept: a sender killed meanwhile changes nothing
        self._begin()
        try:
            await asyncio.sleep(DELAY)
            return await super()._send(request)
        finally:
            self.busy -= 1

    def sends(self) -> list[tuple[str, str, str | None, int | None]]:
        out = []
        for s in self.sent:
            message = s.body.get("message", {})
            android = message.get("android") or {}
            collapse = android.get("collapse_key") or (android.get("notification") or {}).get(
                "tag")
            out.append(((message.get("data") or {}).get("uid", ""), s.token, collapse,
                        s.status))
        return out


async def _fakes(folder: Path) -> tuple[SlowAPNs, SlowFCM, str]:
    tls = make_tls(folder, TOPIC)
    p8, public = make_p8()
    apns = SlowAPNs(tls, TEAM, {KEY_ID: public})
    fcm = SlowFCM(*make_service_account(PROJECT))
    for fake in (apns, fcm):
        fake.arrivals, fake.busy = [], 0
        await fake.start()
    apps = [{"platform": "apns", "kind": "apns", "topic": TOPIC, "key": p8, "key_id": KEY_ID,
             "team_id": TEAM, "host": apns.host, "port": apns.port, "ca_file": str(tls.ca)},
            {"platform": "fcm", "kind": "fcm", "token_url": fcm.token_url, "api_url": fcm.url,
             "service_account": fcm.account}]
    return apns, fcm, json.dumps(apps)


async def _register(http: aiohttp.ClientSession, url: str, user: str, platform: str) -> None:
    tok = secrets.token_hex(32) if platform == "apns" else f"fcm-{secrets.token_hex(16)}"
    async with http.post(f"{url}/api/v1/me/devices", json={"token": tok, "platform": platform},
                         headers={"Authorization": f"Bearer {user_token(user)}"}) as r:
        r.raise_for_status()


async def _unlogged(http: aiohttp.ClientSession, url: str, uids: set[str]) -> set[str]:
    """The uids among ``uids`` with no push attempt in their delivery log (the API's view)."""
    out = set()
    for uid in uids:
        async with http.get(f"{url}/api/v1/notifications/{uid}/deliveries",
                            headers={"Authorization": f"Bearer {API_KEY}"}) as r:
            r.raise_for_status()
            rows = (await r.json())["deliveries"]
        if not any(row["channel"] in ("apns", "fcm") for row in rows):
            out.add(uid)
    return out


def push_figures(owed: set[str], sends: list[tuple[str, str, str | None, int | None]],
                 bound: int) -> Counter[str]:
    """The push counts of a run (pure): see the module's docstring."""
    per = Counter((uid, token) for uid, token, _, _ in sends)
    duplicates = sum(n - 1 for n in per.values())
    pushed = {uid for uid, _, _, status in sends if status == 200}
    return Counter({"owed": len(owed), "pushed": len(pushed & owed),
                    "missing": len(owed - pushed), "duplicates": duplicates,
                    "in-flight bound": bound,
                    "duplicates over bound": max(0, duplicates - bound),
                    "without collapse id": sum(c != uid for uid, _, c, _ in sends)})


async def run_push(folder: Path, pg: Postgres, size: Size, fault: str) -> Figures:
    """``fault``: ``redis-wipe`` (kill -9 Redis, restart it empty) or ``worker-kill``."""
    await asyncio.to_thread(folder.mkdir, parents=True, exist_ok=True)
    apns, fcm, config = await _fakes(folder)
    cluster = Cluster(folder, pg, push_config=config, workers=2 if fault == "worker-kill" else 1,
                      env={"TIDINGS_PUSH_DEVICE_PER_MINUTE": "100000"})
    try:
        async with aiohttp.ClientSession() as http:
            await cluster.start()
            users = [f"push-{uuid.uuid4().hex[:10]}" for _ in range(size.push_users)]
            await asyncio.gather(*(_register(http, cluster.nodes[i % 3].url, u,
                                             "apns" if i % 2 else "fcm")
                                   for i, u in enumerate(users)))
            producer = Producer(http, cluster.running, users, rate=size.rate / 2)
            stop = asyncio.Event()
            stream = asyncio.create_task(producer.run(stop))
            await asyncio.sleep(size.seconds / 3)
            bound = 0
            if fault == "worker-kill":
                cluster.workers[0].signal(signal.SIGKILL)
                at = time.monotonic()
                bound = sum(t > at - WINDOW for f in (apns, fcm) for t in f.arrivals)
            else:
                cluster.redis.kill()
                await asyncio.sleep(0.5)
                await asyncio.to_thread(cluster.redis.start, wipe=True)
            fault_end = time.monotonic()
            await asyncio.sleep(size.seconds * 2 / 3)
            stop.set()
            await stream
            owed = {uid for p in producer.published if p.ok for _, _, uid in p.acked}
            deadline = max(fault_end + TAKEOVER, time.monotonic() + 2.0)
            unlogged = owed
            while time.monotonic() < deadline:
                sent = {uid for uid, _, _, s in apns.sends() + fcm.sends() if s == 200}
                idle = time.monotonic() - max(apns.arrivals + fcm.arrivals, default=0.0)
                if owed <= sent and idle > 0.5:
                    unlogged = await _unlogged(http, cluster.alive()[0].url, unlogged)
                    if not unlogged:
                        break
                await asyncio.sleep(0.25)
            unlogged = await _unlogged(http, cluster.alive()[0].url, unlogged)
            stored, messages = await stored_seqs(cluster, users)
            figures = judge(producer.published, stored, messages, [], {}, [], None)
            figures.push = push_figures(owed, apns.sends() + fcm.sends(), bound)
            figures.push["not in delivery log"] = len(unlogged)
            first = [t for t in apns.arrivals + fcm.arrivals if t > fault_end]
            if first:
                figures.recovery.append(min(first) - fault_end)
            figures.notes += cluster.problems()
            return figures
    finally:
        await cluster.stop()
        await apns.stop()
        await fcm.stop()
