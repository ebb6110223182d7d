"""429 with Retry-After once a user or a producer key goes over its rate; others unaffected."""

from __future__ import annotations

from dataclasses import replace

from helpers import PRODUCER, new_user, serve_node, user_headers


async def test_user_and_producer_limits(settings, http, pool):
    s = replace(settings, rate_limit_user=1.0, rate_limit_producer=1.0)
    async with serve_node(s) as node:
        greedy, other = new_user("greedy"), new_user("other")
        statuses = []
        while 429 not in statuses and len(statuses) < 100:
            async with http.get(f"{node.url}/api/v1/me/notifications",
                                headers=user_headers(greedy)) as r:
                statuses.append(r.status)
                if r.status == 429:
                    assert int(r.headers["Retry-After"]) >= 1
                    assert (await r.json())["error"]["code"] == "rate_limited"
        assert statuses[:5] == [200] * 5 and statuses[-1] == 429, "burst of 5, then limited"
        async with http.get(f"{node.url}/api/v1/me/notifications",
                            headers=user_headers(other)) as r:
            assert r.status == 200, "another user has a bucket of their own"

        before = await pool.fetchval("SELECT count(*) FROM tidings_notifications")
        codes = []
        while 429 not in codes and len(codes) < 100:
            async with http.post(f"{node.url}/api/v1/notifications", headers=PRODUCER,
                                 json={"recipients": [other], "message": "m"}) as r:
                codes.append(r.status)
        assert codes[:2] == [201, 201] and codes[-1] == 429
        stored = await pool.fetchval("SELECT count(*) FROM tidings_notifications") - before
        assert stored == codes.count(201), "a limited publish stores nothing"
