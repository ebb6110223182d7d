"""Liveness (``/healthz``: the process answers); readiness (``/readyz``: PostgreSQL, Redis do).

``/readyz`` probes each dependency now and answers 503 naming the ones that are
down (``"down": ["postgres"]`` and a reason per check) while any is.
"""

from __future__ import annotations

from aiohttp import web

from .http import reply, services

routes = web.RouteTableDef()


@routes.get("/healthz")
async def healthz(request: web.Request) -> web.Response:
    return reply({"status": "ok", "node": services(request).node_id})


@routes.get("/readyz")
async def readyz(request: web.Request) -> web.Response:
    checks = await services(request).health.check()
    down = sorted(name for name, result in checks.items() if result != "ok")
    return reply({"status": "unavailable" if down else "ok", "checks": checks, "down": down},
                 503 if down else 200)
