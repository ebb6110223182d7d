"""A preferences change reaches every socket of the user, on every node."""

from __future__ import annotations

import asyncio

from tidings.client import Subscriber, update_preferences

from helpers import new_user, token


async def next_of(it, kind):
    async with asyncio.timeout(15):
        while True:
            msg = await anext(it)
            if msg["type"] == kind:
                return msg


async def test_the_second_device_gets_the_change_made_on_the_first(nodes):
    a, b = await nodes.start(), await nodes.start()
    user, other = new_user("prefs"), new_user("prefs")
    phone, laptop = Subscriber(a.url, token(user)), Subscriber(b.url, token(user))
    stranger = Subscriber(b.url, token(other))
    its = [aiter(s) for s in (phone, laptop, stranger)]
    try:
        for it in its:
            await next_of(it, "counts")  # joined: presence is written
        doc = await update_preferences(a.url, token(user),
                                       {"quiet_hours": {"start": "22:00", "end": "07:00"}})
        assert doc["quiet_hours"] == {"start": "22:00", "end": "07:00"}
        for it in its[:2]:
            frame = await next_of(it, "preferences")
            assert {k: v for k, v in frame.items() if k != "type"} == doc
        await update_preferences(a.url, token(other), {"channels": {"email": False}})
        theirs = await next_of(its[2], "preferences")
        assert theirs["channels"]["email"] is False and theirs["quiet_hours"] is None
        later = await update_preferences(b.url, token(user), {"quiet_hours": None})
        for it in its[:2]:  # the stranger's change went to no socket of the user
            assert {k: v for k, v in (await next_of(it, "preferences")).items()
                    if k != "type"} == later
    finally:
        for s in (phone, laptop, stranger):
            await s.close()
