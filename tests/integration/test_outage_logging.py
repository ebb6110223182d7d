"""An outage is said once: one WARNING when PostgreSQL or Redis goes away and one line when
it is back, however long it lasts and whatever part of the node keeps retrying meanwhile
(the socket inbox reader, the presence heartbeat, sockets joining, the socket delivery log,
asyncpg's pool reopening its connections). The retries are DEBUG lines, never a line each."""

from __future__ import annotations

import asyncio
import dataclasses
import logging
from urllib.parse import urlsplit

import aiohttp

from tidings.embedded import free_port, start_redis, stop_process

from fakes.tcp_proxy import TcpProxy, target_of
from helpers import new_user, serve_node, token


def said(caplog, text: str) -> int:
    return sum(text in r.getMessage() for r in caplog.records)


def loud(caplog) -> list[str]:
    """WARNING and worse lines of Tidings and of its drivers."""
    return [r.getMessage() for r in caplog.records if r.levelno >= logging.WARNING
            and r.name.split(".")[0] in ("tidings", "asyncpg", "redis", "aiohttp")]


def ws_url(node) -> str:
    return node.url.replace("http://", "ws://") + "/ws/me/notifications"


async def test_a_redis_outage_is_one_warning_however_long(settings, http, tmp_path, caplog):
    port = free_port()
    proc, url = start_redis(tmp_path, port, persist=False)
    try:
        async with serve_node(dataclasses.replace(settings, redis_url=url)) as node:
            user = new_user("outage")
            async with http.ws_connect(ws_url(node), heartbeat=None,
                                       headers={"Authorization": f"Bearer {token(user)}"}) as ws:
                assert (await ws.receive_json(timeout=10))["type"] == "counts"
                caplog.set_level(logging.DEBUG, logger="tidings")
                stop_process(proc)
                async with asyncio.timeout(30):  # several retries of each loop
                    while said(caplog, "inbox read failed") < 4 or said(
                            caplog, "heartbeat failed") < 2:
                        await asyncio.sleep(0.05)
                proc, _ = start_redis(tmp_path, port, persist=False)
                async with asyncio.timeout(30):
                    while not said(caplog, "Redis is available again"):
                        await asyncio.sleep(0.05)
                assert not ws.closed, "a Redis outage does not close sockets"
        assert [line.split(" (")[0] for line in loud(caplog)] == ["Redis is unavailable"]
    finally:
        stop_process(proc)


async def test_a_postgres_outage_is_one_warning_however_long(
        own_database, settings, http, caplog):
    proxy = TcpProxy(target_of(own_database))
    await proxy.start()
    parts = urlsplit(own_database)
    through = f"postgresql://{parts.username or 'postgres'}@127.0.0.1:{proxy.port}{parts.path}"
    auth = {"Authorization": f"Bearer {token(new_user('outage'))}"}
    try:
        async with serve_node(dataclasses.replace(settings, database_url=through)) as node:
            caplog.set_level(logging.DEBUG, logger="tidings")
            await proxy.refuse()
            proxy.cut_all()
            refused = 0
            async with asyncio.timeout(30):  # sockets keep coming while the pool keeps retrying
                while refused < 12:
                    async with http.ws_connect(ws_url(node), heartbeat=None, headers=auth) as ws:
                        msg = await ws.receive(timeout=10)
                    assert msg.type == aiohttp.WSMsgType.CLOSE and msg.data == 1012
                    refused += 1
                    await asyncio.sleep(0.3)
            await proxy.accept()
            async with asyncio.timeout(30):
                while not said(caplog, "PostgreSQL is available again"):
                    await asyncio.sleep(0.05)
            async with http.ws_connect(ws_url(node), heartbeat=None, headers=auth) as ws:
                assert (await ws.receive_json(timeout=10))["type"] == "counts"
        assert [line.split(" (")[0] for line in loud(caplog)] == ["PostgreSQL is unavailable"]
    finally:
        await proxy.stop()
