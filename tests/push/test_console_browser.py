"""The operator's console end to end in headless Chromium (tests/cdp.py): open /admin, enter
the admin key, send a notification and see it arrive on a user's socket, then requeue the
dead letter its push left (the fake APNs answered 503) and see the push go out; send to the
subscribers of a type the user opted in to and see it arrive too, and the user's
preferences and profile in the user view."""

from __future__ import annotations

import os
import uuid

import pytest
from push_helpers import add_device, jobs_of, token_of, work

from tidings.api.admin_auth import key_id
from tidings.services.context import SERVICES

from cdp import CHROMIUM, chromium
from fakes.fake_apns import Answer
from helpers import ADMIN_KEY, PRODUCER, Socket, new_user, user_headers

pytestmark = pytest.mark.skipif(not os.path.exists(CHROMIUM), reason=f"no Chromium at {CHROMIUM}")


async def test_console_sends_and_requeues_in_a_browser(console, redis, pool, apns, http,
                                                        tmp_path):
    user = new_user("browser")
    kind = f"opt-in-{uuid.uuid4().hex[:8]}"  # users are in only if they turn it on
    async with http.put(f"{console.url}/api/v1/types/{kind}", headers=PRODUCER,
                        json={"title": "Release notes", "channels": {"push": False}}) as r:
        assert r.status == 201
    async with http.patch(f"{console.url}/api/v1/me/preferences", headers=user_headers(user),
                          json={"types": {kind: {"channels": {"push": True}}}}) as r:
        assert r.status == 200
    async with http.put(f"{console.url}/api/v1/users/{user}", headers=PRODUCER,
                        json={"email": "browser@example.com", "locale": "de-DE"}) as r:
        assert r.status == 201
    dev = await add_device(pool, user)
    apns.answer(await token_of(pool, dev), Answer(503, "ServiceUnavailable"))
    sock = Socket(console.url, user)
    try:
        await sock.until(lambda m: m)
        async with chromium(tmp_path / "profile") as tab:
            await tab.goto(f"{console.url}/admin")
            await tab.until("!document.getElementById('key-form').hidden")
            # the shared stylesheet (/static/tidings.css) applies under the page's policy
            assert await tab.js("getComputedStyle(document.body).backgroundColor") == (
                "rgb(244, 245, 248)")
            await tab.fill("#key-form input[name=key]", ADMIN_KEY)
            await tab.click("#key-form button[type=submit]")
            await tab.until("!document.getElementById('tabs').hidden")
            assert await tab.until("document.getElementById('key-id').textContent") == (
                key_id(ADMIN_KEY))
            assert await tab.js("sessionStorage.getItem('tidings-admin-key')") == ADMIN_KEY

            await tab.fill("#s-recipients", user)
            await tab.fill("#s-title", "Maintenance tonight")
            await tab.fill("#s-message", "The service is down from 22:00 to 22:30.")
            await tab.click("#s-push")
            await tab.click("#send-form button[type=submit]")
            uid = await tab.until(
                "document.querySelector('#send-result .sent-uid')?.textContent")
            await sock.until(lambda m: any(x["type"] == "notification" for x in m))
            [got] = [x["notification"] for x in sock.messages if x["type"] == "notification"]
            assert (got["uid"], got["title"]) == (uid, "Maintenance tonight")

            await work(console, redis, pool)  # APNs answers 503: one attempt, a dead letter
            [job] = await jobs_of(pool, [uid])
            assert job["dead"]
            await tab.click("[data-tab=dead]")
            row = f"#dead-list tr[data-job='{job['id']}']"
            await tab.until(f"!!document.querySelector(\"{row}\")")
            await tab.click(f"{row} .requeue")
            await tab.until(f"!document.querySelector(\"{row}\")")
            assert "requeued 1" in await tab.js(
                "document.getElementById('dead-result').textContent")
            await work(console, redis, pool)  # APNs answers 200 now
            assert await jobs_of(pool, [uid]) == []
            assert len(apns.to(await token_of(pool, dev))) == 2

            await tab.click("[data-tab=audit]")
            actions = await tab.until(
                "[...document.querySelectorAll('#audit-list tr')].map(r => r.dataset.action)"
                ".slice(0, 2).join(',')")
            assert actions == "requeue,send"

            await tab.click("[data-tab=send]")
            await tab.click("#s-to-type")
            await tab.until(f"!!document.querySelector('#s-subscribers option[value=\"{kind}\"]')")
            assert await tab.js("document.getElementById('s-recipients').hidden")
            await tab.fill("#s-subscribers", kind)
            await tab.fill("#s-title", "Version 2")
            await tab.fill("#s-message", "Out now.")
            await tab.js("document.getElementById('s-push').checked = false")
            await tab.click("#send-form button[type=submit]")
            sent = f"#send-result tr[data-recipient='{user}']"
            await tab.until(f"!!document.querySelector(\"{sent}\")")
            assert "sent to 1" in await tab.js(
                "document.getElementById('send-result').textContent")
            await sock.until(lambda m: any(x["type"] == "notification"
                                           and x["notification"]["type"] == kind for x in m))
            [typed] = [x["notification"] for x in sock.messages
                       if x["type"] == "notification" and x["notification"]["type"] == kind]
            assert typed["title"] == "Version 2"

            await tab.click("[data-tab=user]")
            await tab.fill("#user-form input[name=user]", user)
            await tab.click("#user-form button[type=submit]")
            assert "gave up after 1 attempts" in await tab.until(
                "document.querySelector('#user-out table.devices')?.textContent")
            assert "push on" in await tab.until(
                f"document.querySelector(\"#user-out tr[data-type='{kind}']\")?.textContent")
            profile = await tab.js("document.querySelector('#user-out .profile').textContent")
            assert "browser@example.com" in profile and "de-DE" in profile
            (tmp_path / "user.png").write_bytes(await tab.screenshot())

            await tab.click("[data-tab=apps]")
            assert await tab.until("document.querySelectorAll('#apps-out .app').length") == 3
            assert "BEGIN" not in await tab.js("document.getElementById('apps-out').textContent")
            (tmp_path / "apps.png").write_bytes(await tab.screenshot())

            node_id = console.app[SERVICES].node_id
            await tab.click("[data-tab=nodes]")
            # The node writes its figures every 2 s and the page rereads them every 5 s: a
            # run quicker than one beat first shows the figures written before the socket.
            cell = f"document.querySelector(\"#nodes-list tr[data-node='{node_id}'] .sockets\")"
            await tab.until(f"{cell}?.textContent === '1'")
            (tmp_path / "console.png").write_bytes(await tab.screenshot())
            assert tab.errors == []
    finally:
        await sock.close()
