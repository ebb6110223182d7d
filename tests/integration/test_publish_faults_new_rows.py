"""A publish's first try assumes its rows new: faults around that try never store twice.

A keyed publish and a stream's first chunk store inside a transaction without looking
their uids up on the first try. These cut the connection (``tests/fakes/tcp_proxy.py``)
after the statement (the transaction never commits) and after ``COMMIT`` (it commits
and the client cannot know), and check the answer is 201 with every row stored once.
"""

from __future__ import annotations

import asyncio
import uuid

import pytest

from tidings.bus.publisher import Publisher
from tidings.core.requests import PublishRequest
from tidings.services.publishing import Publishing

from helpers import new_user, stored_once_each


@pytest.mark.parametrize("cut", ["statement", "commit"])
async def test_a_keyed_publish_cut_is_stored_once_and_answered_201(
        proxy, proxied_pool, own_pool, redis, cut):
    publishing = Publishing(proxied_pool, Publisher(redis), settle_within=10)
    user, marker = new_user("keyedcut"), f"cut-{uuid.uuid4().hex}"
    req = PublishRequest(recipients=[user], message=marker,
                         idempotency_key=f"k-{uuid.uuid4().hex}")
    proxy.cut_after(marker.encode() if cut == "statement" else b"COMMIT")
    answer = await asyncio.wait_for(publishing.publish(req, [user]), 20)
    assert proxy.cuts == 1
    assert answer.status == 201 and answer.body["notifications"][0]["seq"] == 1
    assert await stored_once_each(own_pool, [user]) == {user: (1, 1, 1)}
    again = await publishing.publish(req, [user])
    assert (again.status, again.body) == (201, answer.body), "the key answers the same"
    assert await stored_once_each(own_pool, [user]) == {user: (1, 1, 1)}
    await publishing.retired()
    await own_pool.execute("DELETE FROM tidings_outbox")


@pytest.mark.parametrize("keyed", [False, True])
@pytest.mark.parametrize("cut", ["statement", "commit"])
async def test_a_streamed_publish_whose_first_chunk_is_cut_stores_each_row_once(
        proxy, proxied_pool, own_pool, redis, cut, keyed):
    publishing = Publishing(proxied_pool, Publisher(redis), settle_within=10, chunk_rows=3)
    users = [new_user("streamcut") for _ in range(7)]
    marker = f"cut-{uuid.uuid4().hex}"
    req = PublishRequest(recipients=users, message=marker,
                         idempotency_key=f"k-{uuid.uuid4().hex}" if keyed else None)
    proxy.cut_after(marker.encode() if cut == "statement" else b"COMMIT")
    answer = await asyncio.wait_for(publishing.publish(req, users), 20)
    assert proxy.cuts == 1
    assert answer.status == 201 and answer.body["created"] == 7
    assert [n["seq"] for n in answer.body["notifications"]] == [1] * 7
    assert await stored_once_each(own_pool, users) == {u: (1, 1, 1) for u in users}
    await publishing.retired()
    await own_pool.execute("DELETE FROM tidings_outbox")
