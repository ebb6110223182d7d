"""``GET /metrics``: this process's Prometheus metrics, on the main port for an admin key,
and on the metrics port (``TIDINGS_METRICS_PORT``) for anyone who reaches it.

Contracts: on the main port the admin key is checked first, as for the console
(:mod:`.admin_auth`: 404 with no admin key configured, 401 without a key, 403
with a wrong one), whether or not metrics are on; then 404 while metrics are
off (``TIDINGS_METRICS=false``). The metrics port serves ``/metrics`` alone,
without a key: bind it (``TIDINGS_METRICS_HOST``) where only the scraper
reaches it. Each process answers for itself: with ``--workers N`` a scrape of
the main port reaches whichever process took the connection, so scrape each
process's metrics port instead.
"""

from __future__ import annotations

from aiohttp import web

from ..core.errors import NotFound
from ..services.metrics import CONTENT_TYPE, Metrics
from .admin_auth import admin
from .http import services

routes = web.RouteTableDef()


async def _answer(metrics: Metrics) -> web.Response:
    response = web.Response(body=await metrics.exposition())
    response.headers["Content-Type"] = CONTENT_TYPE
    return response


@routes.get("/metrics")
async def metrics(request: web.Request) -> web.Response:
    admin(request)
    found = services(request).metrics
    if found is None:
        raise NotFound("metrics are off on this node (TIDINGS_METRICS=false)")
    return await _answer(found)


async def serve(metrics: Metrics, host: str, port: int) -> web.AppRunner:
    """Serve ``/metrics`` without a key on ``host:port``; ``cleanup()`` the runner to stop.

    Raises OSError when the port cannot be listened on.
    """
    app = web.Application()

    async def scrape(_request: web.Request) -> web.Response:
        return await _answer(metrics)

    app.router.add_get("/metrics", scrape)
    runner = web.AppRunner(app, access_log=None)
    await runner.setup()
    try:
        await web.TCPSite(runner, host, port).start()
    except BaseException:
        await runner.cleanup()
        raise
    return runner
