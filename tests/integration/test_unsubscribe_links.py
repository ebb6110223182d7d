"""Hostile one-click unsubscribe requests on a real node: a link that verifies, with bodies
a mail client would never send, and the same link used again.

The e-mails that carry the links, and the link's ordinary use, are in
tests/push/test_email_channel.py.
"""

from __future__ import annotations

import uuid
from urllib.parse import quote

import pytest

from tidings.core.unsubscribe import signing_key, token

from helpers import PRODUCER, new_user, user_headers


async def one_click_url(node, http, settings) -> tuple[str, str, str]:
    """(the one-click URL of a new user and a new type using e-mail, the user, the type)."""
    kind, user = f"unsub-{uuid.uuid4().hex[:8]}", new_user("unsub")
    async with http.put(f"{node.url}/api/v1/types/{kind}", headers=PRODUCER,
                        json={"title": "Digest", "channels": {"email": True}}) as r:
        assert r.status == 201
    link = token(signing_key(settings.unsubscribe_key), user, kind)
    return f"{node.url}/api/v1/unsubscribe?token={quote(link, safe='')}", user, kind


@pytest.mark.parametrize(("content_type", "body"), [
    ("text/plain; charset=no-such-charset", b"List-Unsubscribe=One-Click"),
    ("text/plain; charset=utf-8", b"List-Unsubscribe=One-Click\xff"),
    ("application/x-www-form-urlencoded", b"List-Unsubscribe=One-Click&x=\xff"),
    ("multipart/form-data; boundary=zz", b"--xx\r\nnot a part"),
    ("multipart/form-data", b"List-Unsubscribe=One-Click"),
], ids=["unknown charset", "not utf-8", "form not utf-8", "broken multipart",
        "multipart without boundary"])
async def test_a_body_that_does_not_decode_is_not_one_click(node, http, pool, settings,
                                                            content_type, body):
    url, user, _ = await one_click_url(node, http, settings)
    async with http.post(url, data=body, headers={"Content-Type": content_type}) as r:
        assert r.status == 400, await r.text()
        assert (await r.json())["error"]["code"] == "not_one_click"
    assert await pool.fetchval("SELECT count(*) FROM tidings_preferences WHERE user_id = $1",
                               user) == 0


async def test_the_same_link_again_changes_nothing_more(node, http, settings):
    """The second click answers 200 as the first did, and the user's preferences keep the
    version the first gave them (no change, so no new version for clients to refetch)."""
    url, user, kind = await one_click_url(node, http, settings)

    async def version() -> int:
        async with http.get(f"{node.url}/api/v1/me/preferences",
                            headers=user_headers(user)) as r:
            doc = await r.json()
        assert doc["types"][kind]["channels"] == {"email": False}
        return doc["version"]

    async with http.post(url, data={"List-Unsubscribe": "One-Click"}) as r:
        assert r.status == 200
    first = await version()
    for _ in range(2):
        async with http.post(url, data={"List-Unsubscribe": "One-Click"}) as r:
            assert r.status == 200
            assert await r.json() == {"type": kind, "channel": "email", "enabled": False}
    assert await version() == first
    async with http.put(f"{node.url}/api/v1/types/{kind}", headers=PRODUCER,
                        json={"title": "Digest", "channels": {"email": True},
                              "required": True}) as r:
        assert r.status == 200
    async with http.post(url, data={"List-Unsubscribe": "One-Click"}) as r:  # now required
        assert r.status == 400 and (await r.json())["error"]["code"] == "required_type"
