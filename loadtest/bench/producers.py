"""The publishing side of the driver: Tidings' plain and batch endpoints, and nchan's publisher.

Every producer answers a publish with the seq each recipient got (``{user: seq}``)
or None when it failed (counted in ``errors`` by kind, never raised), so the
sockets' checks know what each user must have received. A notification's ``data``
is ``{"t": due, "k": tag}``: ``due`` is the ``time.monotonic()`` it was scheduled
at (latency counts any wait in the driver too), ``tag`` names the step or broadcast.

- :class:`Producer` posts to ``POST /api/v1/notifications`` (one notification per
  request) or, with ``endpoint="batch"``, ``POST /api/v1/notifications/batch``
  (``per_request`` distinct notifications per request, each answered on its own).
- :class:`NchanProducer` posts to nchan's per-user channels through
  :class:`~loadtest.bench.nchan.NchanPublisher` (seqs numbered here).
"""

from __future__ import annotations

from typing import Any

import aiohttp
import orjson

from . import nchan

PUBLISH_PATH = "/api/v1/notifications"
BATCH_PATH = "/api/v1/notifications/batch"

Seqs = dict[str, int]


def body(users: list[str], tag: str, due: float) -> dict[str, Any]:
    return {"recipients": users, "message": f"bench {tag}", "type": "bench",
            "data": {"t": due, "k": tag}}


class _Errors:
    errors = 0
    error_kinds: dict[str, int]

    def _error(self, kind: str, n: int = 1) -> None:
        self.errors += n
        self.error_kinds[kind] = self.error_kinds.get(kind, 0) + n


class Producer(_Errors):
    """Publishes to a Tidings node with a producer key."""

    def __init__(self, url: str, key: str, inflight: int, endpoint: str = "plain",
                 per_request: int = 1):
        self.url = url
        self.endpoint = endpoint
        self.per_request = per_request if endpoint == "batch" else 1
        self.session = aiohttp.ClientSession(
            connector=aiohttp.TCPConnector(limit=inflight),
            headers={"Authorization": f"Bearer {key}", "Content-Type": "application/json"})
        self.errors = 0
        self.error_kinds = {}
        self.sent = 0

    async def publish(self, users: list[str], tag: str, due: float) -> Seqs | None:
        """One notification to ``users`` through the plain endpoint."""
        try:
            async with self.session.post(self.url + PUBLISH_PATH,
                                         data=orjson.dumps(body(users, tag, due))) as r:
                raw = await r.read()
                if r.status != 201:
                    self._error(f"http {r.status}")
                    return None
        except (aiohttp.ClientError, OSError, TimeoutError) as exc:
            self._error(type(exc).__name__)
            return None
        self.sent += 1
        return {row["recipient"]: row["seq"] for row in orjson.loads(raw)["notifications"]}

    async def publish_many(self, groups: list[list[str]], tag: str,
                           due: float) -> list[Seqs | None]:
        """Distinct notifications, one per group of users: one request through the batch
        endpoint (or one plain request each, if this producer is plain)."""
        if self.endpoint != "batch":
            return [await self.publish(g, tag, due) for g in groups]
        payload = {"notifications": [body(g, tag, due) for g in groups]}
        try:
            async with self.session.post(self.url + BATCH_PATH,
                                         data=orjson.dumps(payload)) as r:
                raw = await r.read()
                if r.status != 200:
                    self._error(f"http {r.status}", len(groups))
                    return [None] * len(groups)
        except (aiohttp.ClientError, OSError, TimeoutError) as exc:
            self._error(type(exc).__name__, len(groups))
            return [None] * len(groups)
        out: list[Seqs | None] = []
        for member in orjson.loads(raw)["results"]:
            if member["status"] != 201:
                self._error(f"member {member['status']}")
                out.append(None)
            else:
                self.sent += 1
                out.append({row["recipient"]: row["seq"] for row in member["notifications"]})
        return out

    async def close(self) -> None:
        await self.session.close()


class NchanProducer(_Errors):
    """The same publishes, to nchan's per-user channels (seqs numbered here)."""

    endpoint = "plain"
    per_request = 1

    def __init__(self, url: str, inflight: int):
        self.publisher = nchan.NchanPublisher(url, inflight)
        self.errors = 0
        self.error_kinds = {}
        self.sent = 0

    async def publish(self, users: list[str], tag: str, due: float) -> Seqs | None:
        try:
            rows = await self.publisher.publish(users, f"bench {tag}", {"t": due, "k": tag})
        except (aiohttp.ClientError, OSError, TimeoutError) as exc:
            self._error(type(exc).__name__)
            return None
        self.sent += 1
        return dict(rows)

    async def publish_many(self, groups: list[list[str]], tag: str,
                           due: float) -> list[Seqs | None]:
        return [await self.publish(g, tag, due) for g in groups]

    async def close(self) -> None:
        await self.publisher.close()


AnyProducer = Producer | NchanProducer
