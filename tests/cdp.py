"""Headless Chromium driven over the DevTools protocol, for end-to-end tests of served pages.

Debian's Chromium (``CHROMIUM_PATH``, default /usr/bin/chromium) is started with
a private profile and a DevTools port of its own choosing; the test talks to its
one tab over a WebSocket. Nothing is downloaded. Uncaught page errors are
collected in :attr:`Tab.errors`.
"""

from __future__ import annotations

import asyncio
import base64
import contextlib
import itertools
import json
import os
import re
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import aiohttp

from helpers import eventually

CHROMIUM = os.environ.get("CHROMIUM_PATH", "/usr/bin/chromium")
_LISTENING = re.compile(rb"DevTools listening on (ws://\S+)")


class PageError(AssertionError):
    pass


class Tab:
    def __init__(self, ws: aiohttp.ClientWebSocketResponse):
        self._ws = ws
        self._ids = itertools.count(1)
        self._waiting: dict[int, asyncio.Future[Any]] = {}
        self.errors: list[str] = []
        self._reader = asyncio.create_task(self._read())

    async def _read(self) -> None:
        async for msg in self._ws:
            data = msg.json()
            if "id" in data and data["id"] in self._waiting:
                self._waiting.pop(data["id"]).set_result(data)
            elif data.get("method") == "Runtime.exceptionThrown":
                details = data["params"]["exceptionDetails"]
                self.errors.append(details.get("exception", {}).get("description")
                                   or details.get("text", "error"))

    async def send(self, method: str, **params: Any) -> dict[str, Any]:
        n = next(self._ids)
        answer = self._waiting[n] = asyncio.get_running_loop().create_future()
        await self._ws.send_json({"id": n, "method": method, "params": params})
        data = await asyncio.wait_for(answer, 30)
        if "error" in data:
            raise PageError(f"{method}: {data['error']}")
        return data["result"]

    async def js(self, expression: str) -> Any:
        """The value of ``expression`` in the page (promises awaited)."""
        result = await self.send("Runtime.evaluate", expression=expression, awaitPromise=True,
                                 returnByValue=True)
        if "exceptionDetails" in result:
            raise PageError(f"{expression}: {result['exceptionDetails']}")
        return result["result"].get("value")

    async def goto(self, url: str) -> None:
        await self.send("Page.navigate", url=url)
        await self.until("document.readyState === 'complete'")

    async def until(self, expression: str, within: float = 20.0) -> Any:
        """Wait until ``expression`` is truthy in the page; returns its value."""
        async def truthy() -> Any:
            with contextlib.suppress(PageError):  # a navigation may be under way
                return await self.js(expression)
        return await eventually(truthy, within)

    async def fill(self, selector: str, value: str) -> None:
        await self.js(f"(() => {{ const e = document.querySelector({_q(selector)});"
                      f" e.value = {_q(value)}; e.dispatchEvent(new Event('input')); }})()")

    async def click(self, selector: str) -> None:
        await self.until(f"!!document.querySelector({_q(selector)})")
        await self.js(f"document.querySelector({_q(selector)}).click()")

    async def screenshot(self) -> bytes:
        """A PNG of the tab as it is shown."""
        shot = await self.send("Page.captureScreenshot", format="png")
        return base64.b64decode(shot["data"])

    async def close(self) -> None:
        self._reader.cancel()
        await self._ws.close()


def _q(text: str) -> str:
    """``text`` as a JavaScript string literal."""
    return json.dumps(text)


@contextlib.asynccontextmanager
async def chromium(profile: Path, width: int = 1100, height: int = 800) -> AsyncIterator[Tab]:
    """A headless Chromium with one tab, closed afterwards."""
    proc = await asyncio.create_subprocess_exec(
        CHROMIUM, "--headless=new", "--no-sandbox", "--disable-gpu", "--no-first-run",
        "--disable-background-networking", "--disable-component-update", "--disable-sync",
        "--disable-quic", f"--user-data-dir={profile}", "--remote-debugging-port=0",
        f"--window-size={width},{height}", "about:blank",
        stdin=asyncio.subprocess.DEVNULL, stdout=asyncio.subprocess.DEVNULL,
        stderr=asyncio.subprocess.PIPE)
    try:
        assert proc.stderr is not None
        async with asyncio.timeout(30):
            while not (found := _LISTENING.search(await proc.stderr.readline())):
                assert proc.returncode is None, "Chromium exited"
        port = found.group(1).decode().split("/")[2].split(":")[1]
        drain = asyncio.create_task(proc.stderr.read())  # keep its pipe from filling
        async with aiohttp.ClientSession() as http:
            async with http.get(f"http://127.0.0.1:{port}/json/list") as r:
                [page] = [t for t in await r.json() if t["type"] == "page"]
            async with http.ws_connect(page["webSocketDebuggerUrl"], max_msg_size=0) as ws:
                tab = Tab(ws)
                await tab.send("Page.enable")
                await tab.send("Runtime.enable")
                try:
                    yield tab
                finally:
                    await tab.close()
        drain.cancel()
    finally:
        if proc.returncode is None:
            proc.terminate()
            try:
                await asyncio.wait_for(proc.wait(), 10)
            except TimeoutError:
                proc.kill()
                await proc.wait()
