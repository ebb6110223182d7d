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



def _style_sources(csp: str) -> str:
    """The sources a Content-Security-Policy allows styles from ('*' with no policy)."""
    directives = {}
    for directive in filter(None, (d.strip() for d in csp.split(";"))):
        name, _, sources = directive.partition(" ")
        directives[name] = sources
    return directives.get("style-src", directives.get("default-src", "*"))


async def test_the_demo_page_and_the_console_share_one_stylesheet(node, http):
    async with http.get(f"{node.url}/static/tidings.css") as r:
        assert r.status == 200 and r.headers["Content-Type"].startswith("text/css")
        assert "--accent:" in await r.text()
    for path in ("/", "/admin"):
        async with http.get(f"{node.url}{path}") as r:
            assert r.status == 200
            page = await r.text()
            sources = _style_sources(r.headers.get("Content-Security-Policy", ""))
        assert '<link rel="stylesheet" href="/static/tidings.css">' in page, path
        assert "--accent:" not in page, f"{path} defines the shared colours again"
        assert sources == "*" or "'self'" in sources.split(), (path, sources)


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


async def test_dev_tokens_go_only_to_requests_naming_a_loopback_host(http, settings):
    """DNS rebinding: a page of attacker.example whose name now resolves to 127.0.0.1 reaches
    the loopback-bound dev server as its own origin, and its requests say
    ``Host: attacker.example``. Such a request gets no user token (403); requests naming a
    loopback host, or the public URL's host name, do."""
    dev_settings = replace(settings, dev=True, public_url="https://inbox.example:8443")
    async with serve_node(dev_settings) as dev:
        port = dev.url.rsplit(":", 1)[1]
        url = f"{dev.url}/api/v1/dev/token?user=alice"
        for host in (f"attacker.example:{port}", "attacker.example", f"127.0.0.1.nip.io:{port}",
                     f"localhost.attacker.example:{port}", "[::1", ""):
            async with http.get(url, headers={"Host": host}) as r:
                assert r.status == 403, host
                body = await r.json()
                assert body["error"]["code"] == "host_not_allowed"
                assert "token" not in body
        for host in (f"127.0.0.1:{port}", f"localhost:{port}", f"[::1]:{port}", "localhost",
                     "LOCALHOST", "inbox.example:8443"):
            async with http.get(url, headers={"Host": host}) as r:
                assert r.status == 200, host
