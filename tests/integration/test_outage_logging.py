"""An outage is said once: one WARNING when PostgreSQL or Redis goes away and one line when
it is back, however long it lasts and whatever part of the node keeps retrying meanwhile
(the socket inbox reader, the presence heartbeat, sockets joining, the socket delivery log,
asyncpg's pool reopening its connections). The retries are DEBUG lines, never a line each."""

from __future__ import annotations

import asyncio
import dataclasses
import logging

import aiohttp

from tidings.client import socket_url
from tidings.embedded import free_port, start_redis, stop_process

from fakes.tcp_proxy import through
from helpers import eventually, new_user, serve_node, token


def said(caplog, text: str) -> int:
    return sum(text in r.getMessage() for r in caplog.records)


def loud(caplog) -> list[str]:
    """WARNING and worse lines of Tidings and of its drivers."""
    return [r.getMessage() for r in caplog.records if r.levelno >= logging.WARNING
            and r.name.split(".")[0] in ("tidings", "asyncpg", "redis", "aiohttp")]


async def test_a_redis_outage_is_one_warning_however_long(settings, http, tmp_path, caplog):
    port = free_port()
    proc, url = start_redis(tmp_path, port, persist=False)
    try:
        async with serve_node(dataclasses.replace(settings, redis_url=url)) as node:
            user = new_user("outage")
            async with http.ws_connect(socket_url(node.url), heartbeat=None,
                                       headers={"Authorization": f"Bearer {token(user)}"}) as ws:
                assert (await ws.receive_json(timeout=10))["type"] == "counts"
                caplog.set_level(logging.DEBUG, logger="tidings")
                stop_process(proc)
                await eventually(lambda: said(caplog, "inbox read failed") >= 4 and said(
                    caplog, "heartbeat failed") >= 2, within=30)  # several retries of each loop
                proc, _ = start_redis(tmp_path, port, persist=False)
                await eventually(lambda: said(caplog, "Redis is available again"), within=30)
                assert not ws.closed, "a Redis outage does not close sockets"
        assert [line.split(" (")[0] for line in loud(caplog)] == ["Redis is unavailable"]
    finally:
        stop_process(proc)


async def test_a_postgres_outage_is_one_warning_however_long(
        own_database, proxy, settings, http, caplog):
    auth = {"Authorization": f"Bearer {token(new_user('outage'))}"}
    async with serve_node(dataclasses.replace(
            settings, database_url=through(proxy, own_database))) as node:
        caplog.set_level(logging.DEBUG, logger="tidings")
        await proxy.refuse()
        proxy.cut_all()
        refused = 0
        async with asyncio.timeout(30):  # sockets keep coming while the pool keeps retrying
            while refused < 12:
                async with http.ws_connect(socket_url(node.url), heartbeat=None,
                                           headers=auth) as ws:
                    msg = await ws.receive(timeout=10)
                assert msg.type == aiohttp.WSMsgType.CLOSE and msg.data == 1012
                refused += 1
                await asyncio.sleep(0.3)  # paces the sockets across the outage
        await proxy.accept()
        await eventually(lambda: said(caplog, "PostgreSQL is available again"), within=30)
        async with http.ws_connect(socket_url(node.url), heartbeat=None, headers=auth) as ws:
            assert (await ws.receive_json(timeout=10))["type"] == "counts"
    assert [line.split(" (")[0] for line in loud(caplog)] == ["PostgreSQL is unavailable"]
