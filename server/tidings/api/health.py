"""Liveness (``/healthz``: the process answers); readiness (``/readyz``: PostgreSQL, Redis do)."""

from __future__ import annotations

import asyncio

from aiohttp import web

from .http import reply, services

routes = web.RouteTableDef()
CHECK_TIMEOUT = 2.0


@routes.get("/healthz")
async def healthz(request: web.Request) -> web.Response:
    return reply({"status": "ok", "node": services(request).node_id})


@routes.get("/readyz")
async def readyz(request: web.Request) -> web.Response:
    s = services(request)
    checks: dict[str, str] = {}
    for name, probe in (("postgres", lambda: s.pool.fetchval("SELECT 1")),
                        ("redis", lambda: s.redis.ping())):
        try:
            await asyncio.wait_for(probe(), CHECK_TIMEOUT)
            checks[name] = "ok"
        except Exception as exc:
            checks[name] = f"unavailable ({type(exc).__name__})"
    ready = all(v == "ok" for v in checks.values())
    return reply({"status": "ok" if ready else "unavailable", "checks": checks},
                 200 if ready else 503)
