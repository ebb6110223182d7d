"""Locust users for Tidings' real traffic mix.

- :class:`Subscriber`: holds one WebSocket of a user, reports each notification's
  publish-to-receive latency as a custom ``WS notification`` request, acks it,
  and now and then drops the socket and reconnects with ``?since=<last seq>``
  (resume). A duplicate or a gap in the user's seqs is reported as a failure.
- :class:`InboxUser`: lists inbox pages and marks notifications read (PATCH).
- :class:`Producer`: publishes single and batched notifications to the users
  the subscribers hold.

Run it headless against any running Tidings (loopback or your own servers)::

    TIDINGS_JWT_SECRET=... TIDINGS_API_KEY=... locust -f loadtest/locustfile.py \\
        --headless -u 200 -r 50 -t 60s --host http://127.0.0.1:8000

Settings (environment): ``TIDINGS_JWT_SECRET`` (HS256 secret the server
verifies), ``TIDINGS_API_KEY`` (producer key), ``LOADTEST_USERS`` (size of the
user-id pool, default 1000), ``LOADTEST_PREFIX`` (user-id prefix, default
random per run), ``LOADTEST_BATCH`` (recipients of a batched publish, default
20), ``LOADTEST_RECONNECT`` (seconds between a subscriber's resumes, default 30).
"""

from __future__ import annotations

import itertools
import json
import os
import random
import secrets
import time
from typing import Any

import gevent
import jwt
import websocket
from locust import HttpUser, User, between, constant, events, task

SECRET = os.environ.get("TIDINGS_JWT_SECRET", "")
API_KEY = os.environ.get("TIDINGS_API_KEY", "")
POOL = int(os.environ.get("LOADTEST_USERS", "1000"))
PREFIX = os.environ.get("LOADTEST_PREFIX") or f"lt-{secrets.token_hex(3)}"
BATCH = int(os.environ.get("LOADTEST_BATCH", "20"))
RECONNECT = float(os.environ.get("LOADTEST_RECONNECT", "30"))
WS_PATH = "/ws/me/notifications"

_next_user = itertools.count()


def user_id(n: int) -> str:
    return f"{PREFIX}-{n % POOL}"


def token(user: str, ttl: int = 6 * 3600) -> str:
    now = int(time.time())
    return jwt.encode({"sub": user, "iat": now, "exp": now + ttl}, SECRET, algorithm="HS256")


@events.init.add_listener
def _check(environment: Any, **_kw: Any) -> None:
    if not SECRET or not API_KEY:
        raise SystemExit("set TIDINGS_JWT_SECRET and TIDINGS_API_KEY for the target server")


class Subscriber(User):
    """One user's socket: latency per notification, acks, resume after a drop."""

    wait_time = constant(1)
    weight = 6

    def on_start(self) -> None:
        self.user = user_id(next(_next_user))
        self.token = token(self.user)
        self.last_seq: int | None = None
        self.ws: websocket.WebSocket | None = None
        self.reader: gevent.Greenlet | None = None
        self.next_drop = time.time() + random.uniform(0.5, 1.5) * RECONNECT
        self._connect()

    def _fire(self, name: str, started: float, length: int = 0,
              exc: Exception | None = None, response_time: float | None = None) -> None:
        self.environment.events.request.fire(
            request_type="WS", name=name, start_time=started, context={},
            response_time=(time.time() - started) * 1000 if response_time is None
            else response_time, response_length=length, response=None, exception=exc)

    def _connect(self) -> None:
        base = self.host.replace("http", "ws", 1).rstrip("/") + WS_PATH
        url = base if self.last_seq is None else f"{base}?since={self.last_seq}"
        started = time.time()
        try:
            ws = websocket.create_connection(
                url, header=[f"Authorization: Bearer {self.token}"], timeout=30,
                enable_multithread=True)
            first = json.loads(ws.recv())
            if first.get("type") != "counts":
                raise ValueError(f"first message was {first.get('type')}")
        except Exception as exc:
            self._fire("connect" if self.last_seq is None else "resume", started, exc=exc)
            return
        ws.settimeout(None)
        self._fire("connect" if self.last_seq is None else "resume", started)
        self.ws = ws
        self.reader = gevent.spawn(self._read, ws)

    def _read(self, ws: websocket.WebSocket) -> None:
        while True:
            try:
                raw = ws.recv()
            except Exception:
                return
            if not raw:
                return
            now = time.time()
            m = json.loads(raw)
            if m.get("type") != "notification":
                continue
            n = m["notification"]
            seq = n.get("seq")
            if seq is not None and self.last_seq is not None and seq != self.last_seq + 1:
                kind = "duplicate" if seq <= self.last_seq else "gap"
                self._fire("order", now, exc=ValueError(f"{kind}: {self.last_seq} then {seq}"),
                           response_time=0)
                if seq <= self.last_seq:
                    continue
            if seq is not None:
                self.last_seq = seq
            sent = (n.get("data") or {}).get("t")
            if sent is not None:
                self._fire("notification", now, len(raw), response_time=(now - sent) * 1000)
            if seq is not None:
                try:
                    ws.send(json.dumps({"type": "ack", "seq": seq}))
                except Exception:
                    return

    def _drop(self) -> None:
        if self.ws is not None:
            try:
                self.ws.close()
            except Exception:
                pass
        if self.reader is not None:
            self.reader.join(timeout=5)
        self.ws = None
        self.reader = None

    @task
    def keep(self) -> None:
        if self.ws is None or (self.reader is not None and self.reader.dead):
            self._drop()
            self._connect()
        elif time.time() >= self.next_drop:  # a network drop: come back with resume
            self.next_drop = time.time() + random.uniform(0.5, 1.5) * RECONNECT
            self._drop()
            self._connect()

    def on_stop(self) -> None:
        self._drop()


class InboxUser(HttpUser):
    """Reads inbox pages and marks what it saw as read."""

    wait_time = between(0.5, 2)
    weight = 2

    def on_start(self) -> None:
        self.user = user_id(random.randrange(POOL))
        self.client.headers["Authorization"] = f"Bearer {token(self.user)}"
        self.unread: list[str] = []

    @task(3)
    def list_page(self) -> None:
        page_size = random.choice((10, 25, 50))
        with self.client.get(f"/api/v1/me/notifications?page=1&page_size={page_size}",
                             name="/api/v1/me/notifications?page", catch_response=True) as r:
            if r.status_code != 200:
                r.failure(f"status {r.status_code}")
                return
            body = r.json()
            self.unread = [n["uid"] for n in body["notifications"] if not n["is_read"]]

    @task(1)
    def unread_page(self) -> None:
        self.client.get("/api/v1/me/notifications?is_read=false&page_size=25",
                        name="/api/v1/me/notifications?is_read=false")

    @task(1)
    def mark_read(self) -> None:
        if not self.unread:
            return
        uids, self.unread = self.unread[:5], self.unread[5:]
        self.client.patch("/api/v1/me/notifications",
                          json={"action_choice": "MARK_AS_READ", "notification_uids": uids},
                          name="PATCH /api/v1/me/notifications")


class Producer(HttpUser):
    """A backend publishing to the users the subscribers hold."""

    wait_time = between(0.05, 0.2)
    weight = 2

    def on_start(self) -> None:
        self.client.headers["Authorization"] = f"Bearer {API_KEY}"

    def _publish(self, recipients: list[str], name: str) -> None:
        body = {"recipients": recipients, "message": "locust", "type": "loadtest",
                "data": {"t": time.time()}}
        with self.client.post("/api/v1/notifications", json=body, name=name,
                              catch_response=True) as r:
            if r.status_code != 201:
                r.failure(f"status {r.status_code}: {r.text[:200]}")

    @task(4)
    def single(self) -> None:
        self._publish([user_id(random.randrange(POOL))], "POST /api/v1/notifications single")

    @task(1)
    def batched(self) -> None:
        users = {user_id(random.randrange(POOL)) for _ in range(BATCH)}
        self._publish(sorted(users), f"POST /api/v1/notifications batch {BATCH}")
