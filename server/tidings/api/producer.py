"""Producer endpoints (API key): publish notifications; in dev mode, mint user tokens."""

from __future__ import annotations

from aiohttp import web

from ..auth import mint
from ..core.errors import NotFound
from ..core.schemas import PublishRequest, TokenRequest, check_publish
from .http import body, producer, reply, services

routes = web.RouteTableDef()


@routes.post("/api/v1/notifications")
async def publish(request: web.Request) -> web.Response:
    producer(request)
    req = await body(request, PublishRequest)
    users = check_publish(req)
    answer = await services(request).publishing.publish(req, users)
    return reply(answer.body, answer.status)


@routes.post("/api/v1/tokens")
async def token(request: web.Request) -> web.Response:
    """Mint a user token with the server's own HS256 secret (not available with public keys)."""
    producer(request)
    req = await body(request, TokenRequest)
    s = services(request).settings
    if not s.jwt_secret:
        raise NotFound("this server verifies tokens it does not sign; mint them where you sign")
    return reply({"token": mint(s.jwt_secret, req.user, req.ttl, audience=s.jwt_audience,
                                issuer=s.jwt_issuer), "expires_in": req.ttl}, 201)
