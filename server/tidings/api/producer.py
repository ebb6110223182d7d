"""Producer endpoints (API key): publish notifications; in dev mode, mint user tokens."""

from __future__ import annotations

import asyncio
import time
from typing import Any

from aiohttp import web

from ..auth import mint
from ..core import ids
from ..core.decoding import decode_batch, decode_body
from ..core.errors import NotFound
from ..core.requests import PublishRequest, TokenRequest, check_publish
from ..services import deliveries as deliveries_of
from ..services.drafting import Answer
from .http import body, failure, path_uid, producer, raw_body, reply, services

routes = web.RouteTableDef()


@routes.post("/api/v1/notifications")
async def publish(request: web.Request) -> web.Response:
    producer(request)
    req = await body(request, PublishRequest)
    answer = await _publish(request, req, check_publish(req))
    return reply(answer.body, answer.status)


async def _publish(request: web.Request, req: PublishRequest, users: list[str]) -> Answer:
    """Publish, timed for ``tidings_publish_duration_seconds`` (answered publishes only)."""
    s = services(request)
    started = time.perf_counter()
    answer = await s.publishing.publish(req, users)
    if s.metrics is not None:
        s.metrics.published(time.perf_counter() - started, len(users))
    return answer


@routes.post("/api/v1/notifications/batch")
async def publish_batch(request: web.Request) -> web.Response:
    """Distinct publishes in one request, each answered on its own, in order: its status
    and the body ``POST /api/v1/notifications`` would have answered (a bad member is
    its own 4xx; the others are stored). The publishes without an idempotency key are
    stored together by the group commit; a member's 2xx means it is stored."""
    producer(request)
    members = decode_batch(await raw_body(request))
    results: list[dict[str, Any] | None] = [None] * len(members)
    pending: list[tuple[int, Any]] = []
    for i, member in enumerate(members):
        try:
            req = decode_body(member, PublishRequest)
            pending.append((i, _publish(request, req, check_publish(req))))
        except Exception as exc:
            results[i] = _slot_error(request, exc)
    # The tasks start in member order, and each one without a key joins the group commit's
    # queue before the next starts: a user named by several members gets seqs in order.
    answers = await asyncio.gather(*(call for _, call in pending), return_exceptions=True)
    for (i, _), answer in zip(pending, answers, strict=True):
        if isinstance(answer, BaseException):
            if not isinstance(answer, Exception):
                raise answer
            results[i] = _slot_error(request, answer)
        else:
            results[i] = {"status": answer.status, **answer.body}
    return reply({"results": results})


def _slot_error(request: web.Request, exc: Exception) -> dict[str, Any]:
    status, code, message, _ = failure(request, exc)
    return {"status": status, "error": {"code": code, "message": message}}


@routes.get("/api/v1/notifications/{uid}/deliveries")
async def deliveries(request: web.Request) -> web.Response:
    """Where one recipient's notification went: sockets, pushes, failures, deactivations."""
    producer(request)
    uid = path_uid(request)
    found = await deliveries_of.of(services(request).pool, uid)
    if found is None:
        raise NotFound("Notification not found")
    return reply({"uid": str(uid), "recipient": found[0], "deliveries": found[1]})

@routes.post("/api/v1/tokens")
async def token(request: web.Request) -> web.Response:
    """Mint a user token with the server's own HS256 secret (not available with public keys)."""
    producer(request)
    req = await body(request, TokenRequest)
    user = ids.user_id(req.user)  # the same rule as recipients and tokens' sub
    s = services(request).settings
    if not s.jwt_secret:
        raise NotFound("this server verifies tokens it does not sign; mint them where you sign")
    return reply({"token": mint(s.jwt_secret, user, req.ttl, audience=s.jwt_audience,
                                issuer=s.jwt_issuer), "expires_in": req.ttl}, 201)
