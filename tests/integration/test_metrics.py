"""``/metrics`` of a real node: the admin key, the metrics port, and values that move with
what the node does (sockets, deliveries, publishes, replays, slow consumers, outages,
the outbox and the push queue).

The module has a database of its own, so the queue gauges (which count the whole
database) see only what its tests do. Gauges read from PostgreSQL are cached for a few
seconds: the tests wait for a value rather than expect it at once.
"""

from __future__ import annotations

import asyncio
import dataclasses
import socket
from urllib.parse import urlsplit

import aiohttp
import pytest

from tidings.client import socket_url
from tidings.embedded import free_port, start_redis, stop_process
from tidings.services.context import SERVICES

from fakes.tcp_proxy import through
from helpers import (
    ADMIN,
    ADMIN_KEY,
    API_KEY,
    PRODUCER,
    eventually,
    metrics_until,
    migrated_database,
    new_user,
    scrape,
    serve_node,
    token,
    value,
)

LISTED = [
    "tidings_sockets_open", "tidings_users_online", "tidings_deliveries_total",
    "tidings_publish_duration_seconds", "tidings_publish_recipients", "tidings_replays_total",
    "tidings_replay_rows_total", "tidings_slow_consumer_closes_total",
    "tidings_push_sends_total", "tidings_push_send_duration_seconds",
    "tidings_push_queue_depth", "tidings_push_queue_lag_seconds", "tidings_outbox_backlog",
    "tidings_dependency_errors_total",
]

@pytest.fixture(scope="module")
async def metered(settings, own_database):
    """A node of its own (its sockets are this module's) with an admin key and a metrics port."""
    s = dataclasses.replace(settings, database_url=own_database, admin_keys=(ADMIN_KEY,),
                            metrics_port=free_port(), ws_send_queue=8)
    async with serve_node(s) as node:
        node.metrics_url = f"http://127.0.0.1:{s.metrics_port}"
        yield node


async def test_the_main_port_wants_an_admin_key(metered, http):
    async with http.get(metered.url + "/metrics") as r:
        assert r.status == 401 and r.headers["WWW-Authenticate"] == "Bearer"
        assert (await r.json())["error"]["code"] == "unauthorized"
    for wrong in ("Bearer " + ADMIN_KEY[:-1] + "x", f"Bearer {API_KEY}", "Bearer " + ADMIN_KEY * 2):
        async with http.get(metered.url + "/metrics", headers={"Authorization": wrong}) as r:
            assert r.status == 403
            assert (await r.json())["error"]["code"] == "invalid_admin_key", wrong
    families, _ = await scrape(http, metered.url)
    assert set(LISTED) <= families, set(LISTED) - families


async def test_the_metrics_port_needs_no_key_and_serves_only_metrics(metered, http):
    families, _ = await scrape(http, metered.metrics_url, headers={})
    assert set(LISTED) <= families
    for path in ("/healthz", "/api/v1/openapi.json"):
        async with http.get(metered.metrics_url + path) as r:
            assert r.status == 404


async def test_sockets_deliveries_publishes_and_replays_move(metered, http):
    a, b = new_user("ma"), new_user("mb")
    _, before = await scrape(http, metered.url)
    got = {}

    def moved(name: str, **labels: str) -> float:
        return (value(got, name, **labels) or 0) - (value(before, name, **labels) or 0)

    sockets = [await http.ws_connect(socket_url(metered.url), headers={
        "Authorization": f"Bearer {token(user)}"}) for user in (a, a, b)]
    for ws in sockets:
        assert (await ws.receive_json(timeout=10))["type"] == "counts"
    got = await metrics_until(http, metered.url, lambda s: value(s, "tidings_sockets_open") == 3)
    assert value(got, "tidings_users_online") == 2

    async with http.post(metered.url + "/api/v1/notifications", headers=PRODUCER,
                         json={"recipients": [a, b, new_user("offline")],
                               "message": "m"}) as r:
        assert r.status == 201
        uid_a = (await r.json())["notifications"][0]["uid"]
    for ws in sockets:
        assert (await ws.receive_json(timeout=10))["type"] == "notification"
    async with http.patch(metered.url + "/api/v1/me/notifications/" + uid_a,
                          headers={"Authorization": f"Bearer {token(a)}"},
                          json={"is_read": True}) as r:
        assert r.status == 200
    async with http.post(metered.url + "/api/v1/notifications", headers=PRODUCER,
                         json={"recipients": [b], "message": "typing", "persist": False}) as r:
        assert r.status == 202
    for ws in sockets:  # a's two get the counts, b the live one
        assert (await ws.receive_json(timeout=10))["type"] in ("counts", "notification")
    got = await metrics_until(http, metered.url, lambda s: value(
        s, "tidings_deliveries_total", kind="live") != value(
        before, "tidings_deliveries_total", kind="live"))
    assert moved("tidings_deliveries_total", kind="notification") == 3, "one per socket"
    assert moved("tidings_deliveries_total", kind="counts") == 2
    assert moved("tidings_deliveries_total", kind="live") == 1
    assert moved("tidings_publish_duration_seconds_count") == 2
    assert moved("tidings_publish_recipients_sum") == 4
    assert moved("tidings_publish_recipients_bucket", le="2.0") == 1
    assert moved("tidings_publish_duration_seconds_sum") > 0

    async with http.ws_connect(socket_url(metered.url) + "?since=0", headers={
            "Authorization": f"Bearer {token(a)}"}) as again:
        assert (await again.receive_json(timeout=10))["type"] == "counts"
        assert (await again.receive_json(timeout=10))["type"] == "notification"
        got = await metrics_until(http, metered.url, lambda s: value(
            s, "tidings_replays_total") != value(before, "tidings_replays_total"))
        assert moved("tidings_replays_total") == 1 and moved("tidings_replay_rows_total") == 1
    for ws in sockets:
        await ws.close()
    await metrics_until(http, metered.url, lambda s: value(s, "tidings_sockets_open") == 0
                and value(s, "tidings_users_online") == 0)


async def test_a_slow_consumer_close_is_counted_and_a_message_flood_is_not(metered, http):
    from websockets.asyncio.client import connect

    _, before = await scrape(http, metered.url)
    async with http.ws_connect(socket_url(metered.url), headers={
            "Authorization": f"Bearer {token(new_user('flood'))}"}) as ws:
        await ws.receive_json()
        for _ in range(200):
            await ws.send_str('{"type": "ack", "seq": 0}')
        async with asyncio.timeout(10):
            while (await ws.receive()).type is aiohttp.WSMsgType.TEXT:
                pass
        assert ws.close_code == 1008

    slow_user = new_user("slow")
    sock = socket.socket()
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)  # a tiny receive window
    sock.setblocking(False)
    await asyncio.get_running_loop().sock_connect(sock, ("127.0.0.1", urlsplit(metered.url).port))
    slow = await connect(socket_url(metered.url), sock=sock, max_queue=1,  # then it stops reading
                         additional_headers={"Authorization": f"Bearer {token(slow_user)}"})
    blob = "x" * 16_000

    async def closed() -> dict | None:
        _, got = await scrape(http, metered.url)
        return got if value(got, "tidings_slow_consumer_closes_total") != value(
            before, "tidings_slow_consumer_closes_total") else None

    counted = None
    for i in range(2000):  # until the node gives up on it (kernel buffers hold a few MB)
        async with http.post(metered.url + "/api/v1/notifications", headers=PRODUCER,
                             json={"recipients": [slow_user], "message": f"n{i}",
                                   "data": {"blob": blob}}) as r:
            assert r.status == 201
        if i % 20 == 19 and (counted := await closed()):
            break
    # The node closes it at once but counts it when the connection ends: the peer, which
    # reads nothing, is cut off CLOSE_WAIT seconds after its close frame was not taken.
    counted = counted or await eventually(closed, within=30)
    assert value(counted, "tidings_slow_consumer_closes_total") == value(
        before, "tidings_slow_consumer_closes_total") + 1, "the flood's 1008 is not counted"
    slow.transport.abort()  # it would read megabytes before the close frame


async def test_push_queue_depth_and_lag_count_due_jobs(metered, http, own_pool):
    offline = new_user("due")
    async with http.post(metered.url + "/api/v1/me/devices",
                         headers={"Authorization": f"Bearer {token(offline)}"},
                         json={"token": "ab" * 32, "platform": "apns"}) as r:
        assert r.status in (200, 201)
    await metered.app[SERVICES].publishing.retired()  # earlier tests' jobs are written
    await own_pool.execute("DELETE FROM tidings_push_jobs")  # no push worker runs here
    await metrics_until(http, metered.url, lambda s: value(s, "tidings_push_queue_depth") == 0
                        and value(s, "tidings_push_queue_lag_seconds") == 0)
    async with http.post(metered.url + "/api/v1/notifications", headers=PRODUCER,
                         json={"recipients": [offline], "message": "m",
                               "push": {"when": "always"}}) as r:
        assert r.status == 201
    got = await metrics_until(http, metered.url,
                              lambda s: value(s, "tidings_push_queue_depth") == 1
                              and value(s, "tidings_push_queue_lag_seconds") > 0)
    assert value(got, "tidings_outbox_backlog") == 0, "the hand-off is done"
    await own_pool.execute("DELETE FROM tidings_push_jobs")
    await metrics_until(http, metered.url, lambda s: value(s, "tidings_push_queue_depth") == 0)


async def test_a_postgres_outage_counts_errors_and_hides_the_queue_gauges(
        settings, own_database, proxy, http):
    s = dataclasses.replace(settings, database_url=through(proxy, own_database),
                            admin_keys=(ADMIN_KEY,))
    async with serve_node(s) as node:
        _, before = await scrape(http, node.url)
        assert value(before, "tidings_push_queue_depth") is not None
        await proxy.refuse()
        proxy.cut_all()
        for _ in range(3):
            async with http.post(node.url + "/api/v1/notifications", headers=PRODUCER,
                                 json={"recipients": [new_user()], "message": "m"}) as r:
                assert r.status == 503
        during = await metrics_until(http, node.url,  # once the cached gauges are read again
                                     lambda got: value(got, "tidings_push_queue_depth") is None)
        errors = (value(during, "tidings_dependency_errors_total", dependency="postgres")
                  - value(before, "tidings_dependency_errors_total", dependency="postgres"))
        assert errors >= 4, "three publishes and the scrape's own read"
        assert value(during, "tidings_dependency_errors_total", dependency="redis") == value(
            before, "tidings_dependency_errors_total", dependency="redis")
        assert value(during, "tidings_outbox_backlog") is None, "not shown stale"
        assert value(during, "tidings_sockets_open") == 0, "the rest is still there"
        await proxy.accept()
        await metrics_until(http, node.url,
                    lambda got: value(got, "tidings_push_queue_depth") is not None)


async def test_a_redis_outage_leaves_an_outbox_backlog_until_it_is_back(
        settings, database_url, http, tmp_path):
    port = free_port()
    redis = [start_redis(tmp_path, port, persist=False)[0]]
    try:
        # a database no other node uses (no other relay finishes its outbox rows)
        async with migrated_database(database_url, "tidings_metrics") as alone, serve_node(
                dataclasses.replace(settings, database_url=alone, admin_keys=(ADMIN_KEY,),
                                    redis_url=f"redis://127.0.0.1:{port}/0")) as node:
            _, before = await scrape(http, node.url)
            assert value(before, "tidings_outbox_backlog") == 0
            stop_process(redis[0])
            async with http.post(node.url + "/api/v1/notifications", headers=PRODUCER,
                                 json={"recipients": [new_user()], "message": "m"}) as r:
                assert r.status == 201, "stored without Redis"
            got = await metrics_until(http, node.url,
                              lambda got: value(got, "tidings_outbox_backlog") == 1)
            assert value(got, "tidings_dependency_errors_total", dependency="redis") > value(
                before, "tidings_dependency_errors_total", dependency="redis")
            redis.append(start_redis(tmp_path, port, persist=False)[0])
            await metrics_until(http, node.url,
                                lambda got: value(got, "tidings_outbox_backlog") == 0)
    finally:
        for proc in redis:
            stop_process(proc)


async def test_without_admin_keys_or_with_metrics_off(settings, http):
    keyless = dataclasses.replace(settings, admin_keys=())
    async with serve_node(keyless) as node:  # no admin key configured: nobody gets in
        async with http.get(node.url + "/metrics", headers=ADMIN) as r:
            assert r.status == 404
            assert "TIDINGS_ADMIN_KEYS" in (await r.json())["error"]["message"]
    port = free_port()
    off = dataclasses.replace(settings, admin_keys=(ADMIN_KEY,), metrics=False,
                              metrics_port=port)
    async with serve_node(off) as node:
        async with http.get(node.url + "/metrics", headers=ADMIN) as r:
            assert r.status == 404 and (await r.json())["error"]["code"] == "not_found"
        async with http.get(node.url + "/metrics") as r:
            assert r.status == 401, "the key first: nothing said to a caller without one"
        with pytest.raises(aiohttp.ClientConnectorError):
            async with http.get(f"http://127.0.0.1:{port}/metrics"):
                pass
