"""Producer endpoints (API key): publish notifications; in dev mode, mint user tokens."""

from __future__ import annotations

import uuid

from aiohttp import web

from ..auth import mint
from ..core import ids
from ..core.errors import NotFound
from ..core.schemas import PublishRequest, TokenRequest, check_publish
from ..services import deliveries as deliveries_of
from .http import body, producer, reply, services

routes = web.RouteTableDef()


@routes.post("/api/v1/notifications")
async def publish(request: web.Request) -> web.Response:
    producer(request)
    req = await body(request, PublishRequest)
    users = check_publish(req)
    answer = await services(request).publishing.publish(req, users)
    return reply(answer.body, answer.status)


@routes.get("/api/v1/notifications/{uid}/deliveries")
async def deliveries(request: web.Request) -> web.Response:
    """Where one recipient's notification went: sockets, pushes, failures, deactivations."""
    producer(request)
    try:
        uid = uuid.UUID(request.match_info["uid"])
    except ValueError:
        raise NotFound("Notification not found") from None
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
