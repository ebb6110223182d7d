"""The demo page, the bundled client, and dev tokens only in dev mode."""

from __future__ import annotations

from dataclasses import replace

from tidings.services.context import SERVICES

from helpers import serve_node


async def test_page_and_client_are_served(node, http):
    async with http.get(f"{node.url}/") as r:
        assert r.status == 200 and "text/html" in r.headers["Content-Type"]
        assert "/static/tidings.js" in await r.text()
    async with http.get(f"{node.url}/static/tidings.js") as r:
        assert r.status == 200 and "javascript" in r.headers["Content-Type"]
        assert "export class TidingsClient" in await r.text()


async def test_dev_tokens_only_in_dev_mode(node, http, settings):
    async with http.get(f"{node.url}/api/v1/dev/token?user=alice") as r:
        assert r.status == 404
    async with serve_node(replace(settings, dev=True)) as dev, \
            http.get(f"{dev.url}/api/v1/dev/token?user=alice") as r:
        assert r.status == 200
        tok = (await r.json())["token"]
        identity = await dev.app[SERVICES].verifier.verify(tok)
        assert identity.user_id == "alice"


async def test_cors_for_allowed_origins_only(node, http):
    url = f"{node.url}/api/v1/me/notifications"
    preflight = {"Origin": "http://allowed.example", "Access-Control-Request-Method": "PATCH",
                 "Access-Control-Request-Headers": "authorization,content-type"}
    async with http.options(url, headers=preflight) as r:
        assert r.status == 204
        assert r.headers["Access-Control-Allow-Origin"] == "http://allowed.example"
        assert "PATCH" in r.headers["Access-Control-Allow-Methods"]
        assert "Authorization" in r.headers["Access-Control-Allow-Headers"]
    async with http.get(url, headers={"Origin": "http://allowed.example"}) as r:
        assert r.status == 401, "CORS does not replace authentication"
        assert r.headers["Access-Control-Allow-Origin"] == "http://allowed.example"
    async with http.options(url, headers={**preflight, "Origin": "http://evil.example"}) as r:
        assert "Access-Control-Allow-Origin" not in r.headers
    async with http.get(url, headers={"Origin": "http://evil.example"}) as r:
        assert "Access-Control-Allow-Origin" not in r.headers
