"""The e-mail channel end to end: publishing with a declared type that uses e-mail, the
e-mail worker deciding at send time and sending through a real SMTP server (aiosmtpd,
started here) that records what it took; preferences, quiet hours, required types,
digests, bounces and retries, on real PostgreSQL with a clock the test moves (no sleeps).
"""

from __future__ import annotations

import asyncio
import email
import email.policy
import time
import urllib.parse
from dataclasses import replace

import pytest
from push_helpers import add_device, jobs_of
from typed_helpers import (
    declare,
    details,
    next_utc,
    patch_preferences,
    publish,
    type_name,
)

from tidings.app import one_click_links
from tidings.client import Subscriber
from tidings.core.email_message import parse_sender
from tidings.core.smtp_url import parse_smtp_url
from tidings.mail.smtp import SmtpMailer
from tidings.workers.email import EmailWorker
from tidings.workers.push import WorkerConfig

from fakes.fake_smtp import FakeSMTP
from helpers import PRODUCER, eventually, serve_node, token, user_headers

PREFERENCES = "https://app.example.com/#prefs"
SENDER = "Tidings <noreply@example.com>"
PUBLIC = "https://tidings.example.com"


@pytest.fixture
async def smtp():
    fake = await FakeSMTP().start()
    yield fake
    await fake.stop()


@pytest.fixture
async def mail(pool, smtp, clock):
    """Runs an e-mail worker on the test clock until no job is due, sending to ``smtp``.
    Other tests' leftover jobs are deleted first: a clock moved forward would take them."""
    await pool.execute("DELETE FROM tidings_push_jobs")
    mailer = SmtpMailer(parse_smtp_url(smtp.url()), parse_sender(SENDER), timeout=10)

    async def run() -> None:
        await EmailWorker(pool, mailer, WorkerConfig(name="e"), preferences_url=PREFERENCES,
                          clock=clock).run(burst=True)

    yield run
    await mailer.close()


@pytest.fixture
def push(burst):
    """The push worker's burst (conftest), beside ``mail``."""
    return burst


async def profile(http, node, user, address, **fields) -> dict:
    async with http.put(f"{node.url}/api/v1/users/{user}", headers=PRODUCER,
                        json={"email": address, **fields}) as r:
        assert r.status in (200, 201), await r.text()
        return await r.json()


async def shown(http, node, user) -> dict:
    async with http.get(f"{node.url}/api/v1/users/{user}", headers=PRODUCER) as r:
        assert r.status == 200
        return await r.json()


def address_of(user: str) -> str:
    return f"{user}@example.com"


def messages(smtp, to: str) -> list[email.message.EmailMessage]:
    return [email.message_from_bytes(m.data, policy=email.policy.default)
            for m in smtp.received if m.rcpt_tos == [to]]


def parts(msg) -> dict[str, str]:
    return {p.get_content_type(): p.get_content().replace("\r\n", "\n")
            for p in msg.walk() if not p.is_multipart()}


async def test_a_type_with_email_on_sends_its_templates_as_text_and_html(
        http, node, pool, smtp, mail, user):
    kind = type_name()
    await declare(http, node, kind, channels={"email": True}, templates={"email": {
        "subject": "{{ created_by }} commented on {{ data.post }}",
        "text": "{{ message }}\n\nSee {{ data.post }}",
        "html": "<p>{{ message|e }}</p>"}})
    await profile(http, node, user, address_of(user), name="Ann Example")
    uid = await publish(http, node, user, kind, "Nice <b>post</b>!", created_by="bob",
                        data={"post": "Hello"})
    await mail()
    [msg] = messages(smtp, address_of(user))
    assert msg["Subject"] == "bob commented on Hello"
    assert msg["To"] == f"Ann Example <{address_of(user)}>"
    assert msg["From"] == SENDER
    assert msg["List-Unsubscribe"] == f"<{PREFERENCES}>"
    assert msg["List-Unsubscribe-Post"] is None  # the page is no one-click endpoint
    body = parts(msg)
    assert body["text/plain"].strip() == "Nice <b>post</b>!\n\nSee Hello"
    assert body["text/html"].strip() == "<p>Nice &lt;b&gt;post&lt;/b&gt;!</p>"
    assert [o for o, _ in await details(pool, uid)] == ["sending", "sent"]
    assert await jobs_of(pool, [uid]) == []


async def test_without_templates_the_email_is_the_notifications_own_text(
        http, node, pool, smtp, mail, user):
    kind = type_name()
    await declare(http, node, kind, channels={"email": True, "push": False})
    await profile(http, node, user, address_of(user))
    await publish(http, node, user, kind, "The text itself", title="A title")
    await mail()
    [msg] = messages(smtp, address_of(user))
    assert msg["Subject"] == "A title"
    assert parts(msg) == {"text/plain": "The text itself\n"}


async def test_a_user_who_turned_email_off_gets_none_and_the_log_says_why(
        http, node, pool, smtp, mail, user):
    kind = type_name()
    await declare(http, node, kind, channels={"email": True})
    await profile(http, node, user, address_of(user))
    await patch_preferences(http, node, user, {"types": {kind: {"channels": {"email": False}}}})
    uid = await publish(http, node, user, kind)
    await mail()
    assert smtp.received == []
    [(outcome, detail)] = await details(pool, uid)
    assert outcome == "skipped" and detail == f"preference: the user turned email off for {kind}"
    assert await jobs_of(pool, [uid]) == []


async def test_no_profile_or_no_address_is_skipped_with_the_reason(
        http, node, pool, smtp, mail, user):
    kind = type_name()
    await declare(http, node, kind, channels={"email": True})
    nobody = await publish(http, node, user, kind)
    await mail()
    await profile(http, node, user, None, name="No Address")
    no_address = await publish(http, node, user, kind)
    await mail()
    assert smtp.received == []
    assert await details(pool, nobody) == [("skipped", "no address: the user has no profile")]
    assert await details(pool, no_address) == [
        ("skipped", "no address: the user's profile has no e-mail")]


async def test_quiet_hours_hold_an_email_until_they_end(
        http, node, pool, smtp, mail, clock, user):
    kind = type_name()
    await declare(http, node, kind, channels={"email": True})
    await profile(http, node, user, address_of(user), timezone="Asia/Tokyo")  # UTC+9
    await patch_preferences(http, node, user,
                            {"quiet_hours": {"start": "22:00", "end": "07:00"}})
    uid = await publish(http, node, user, kind)
    at = next_utc(14)  # 23:00 in Tokyo: quiet
    clock.set(at)
    await mail()
    assert smtp.received == []
    [(outcome, detail)] = await details(pool, uid)
    assert outcome == "skipped" and detail.startswith("quiet hours: deferred until")
    [job] = await jobs_of(pool, [uid])
    ends = at + 8 * 3600  # 07:00 in Tokyo
    assert job["channel"] == "email" and job["due_at"].timestamp() == ends
    clock.set(ends - 60)
    await mail()
    assert smtp.received == []
    clock.set(ends + 1)
    await mail()
    assert len(messages(smtp, address_of(user))) == 1
    assert [o for o, _ in await details(pool, uid)] == ["skipped", "sending", "sent"]


async def test_a_required_type_cannot_be_turned_off_and_is_sent(
        http, node, pool, smtp, mail, clock, user):
    kind = type_name()
    await declare(http, node, kind, channels={"email": True}, required=True)
    await profile(http, node, user, address_of(user))
    async with http.patch(f"{node.url}/api/v1/me/preferences", headers=user_headers(user),
                          json={"types": {kind: {"channels": {"email": False}}}}) as r:
        assert r.status == 400
        assert (await r.json())["error"]["code"] == "required_type"
    await patch_preferences(http, node, user, {"channels": {"email": False},
                                               "quiet_hours": {"start": "00:00",
                                                               "end": "23:59"}})
    uid = await publish(http, node, user, kind)
    clock.set(next_utc(12))
    await mail()
    assert len(messages(smtp, address_of(user))) == 1
    assert [o for o, _ in await details(pool, uid)] == ["sending", "sent"]


async def test_a_digest_of_three_is_one_email_and_one_push(
        http, node, pool, smtp, apns, mail, push, clock, user):
    kind = type_name()
    await declare(http, node, kind, channels={"push": True, "email": True},
                  push={"when": "always"}, digest={"window": 600},
                  templates={"email": {"digest_html": "<ul>{% for n in notifications %}"
                                                      "<li>{{ n.message }}</li>{% endfor %}</ul>"}})
    await add_device(pool, user)
    await profile(http, node, user, address_of(user))
    first = await publish(http, node, user, kind, "one", title="First")
    start = time.time()
    clock.set(start)
    await mail()
    await push()  # each channel opens its digest
    later = [await publish(http, node, user, kind, m) for m in ("two", "three")]
    await mail()
    await push()  # and the others join them
    assert smtp.received == [] and apns.requests == []
    for uid in (first, *later):
        assert [o for o, _ in await details(pool, uid)] == ["digested", "digested"]
    clock.set(start + 601)
    await mail()
    await push()
    [msg] = messages(smtp, address_of(user))
    assert msg["Subject"] == "3 new comments"
    body = parts(msg)
    assert body["text/plain"].strip() == "- First: one\n- two\n- three"
    assert body["text/html"].strip() == "<ul><li>one</li><li>two</li><li>three</li></ul>"
    [sent] = apns.requests
    assert sent.payload["aps"]["alert"]["body"] == "3 new comments"
    assert await pool.fetch("SELECT 1 FROM tidings_push_jobs WHERE digest_user = $1", user) == []


async def test_a_digest_is_not_sent_when_all_was_read(
        http, node, pool, smtp, mail, clock, user):
    kind = type_name()
    await declare(http, node, kind, channels={"email": True}, digest={"window": 60})
    await profile(http, node, user, address_of(user))
    uids = [await publish(http, node, user, kind, m) for m in ("one", "two", "three")]
    start = time.time()
    clock.set(start)
    await mail()
    async with http.patch(f"{node.url}/api/v1/me/notifications", headers=user_headers(user),
                          json={"action_choice": "MARK_ALL_AS_READ"}) as r:
        assert r.status == 200
    clock.set(start + 61)
    await mail()
    assert smtp.received == []
    logged = [d for uid in uids for d in await details(pool, uid)]
    assert [o for o, _ in logged].count("digested") == 3
    assert any(o == "skipped" and d.startswith("digest: all") for o, d in logged)
    assert await pool.fetch("SELECT 1 FROM tidings_push_jobs WHERE digest_user = $1", user) == []


async def test_a_preference_changed_after_publish_is_honoured_when_sent(
        http, node, pool, smtp, mail, user):
    kind = type_name()
    await declare(http, node, kind, channels={"email": True})
    await profile(http, node, user, address_of(user))
    uid = await publish(http, node, user, kind)
    await patch_preferences(http, node, user, {"types": {kind: {"channels": {"email": False}}}})
    await mail()
    assert smtp.received == []
    [(outcome, detail)] = await details(pool, uid)
    assert outcome == "skipped" and detail.startswith("preference")


async def test_a_bouncing_address_is_marked_and_skipped_until_it_changes(
        http, node, pool, smtp, mail, user):
    kind = type_name()
    await declare(http, node, kind, channels={"email": True})
    await profile(http, node, user, address_of(user))
    smtp.answer_rcpt(address_of(user), "550 5.1.1 No such user here")
    bounced = await publish(http, node, user, kind)
    await mail()
    assert smtp.received == []
    assert [o for o, _ in await details(pool, bounced)] == ["sending", "bounced"]
    shown_now = await shown(http, node, user)
    assert shown_now["email_status"] == "bouncing"
    assert "550 5.1.1 No such user here" in shown_now["email_bounce"]["detail"]
    assert shown_now["email_bounce"]["at"] is not None

    skipped = await publish(http, node, user, kind)
    await mail()
    [(outcome, detail)] = await details(pool, skipped)
    assert outcome == "skipped" and detail.startswith(f"bouncing: {address_of(user)} bounced")
    assert smtp.received == []

    await profile(http, node, user, "new-" + address_of(user))  # another address clears it
    assert (await shown(http, node, user))["email_status"] == "ok"
    await publish(http, node, user, kind)
    await mail()
    assert len(messages(smtp, "new-" + address_of(user))) == 1


async def test_a_4xx_is_retried_with_backoff_and_then_delivered(
        http, node, pool, smtp, mail, clock, user):
    kind = type_name()
    await declare(http, node, kind, channels={"email": True})
    await profile(http, node, user, address_of(user))
    smtp.answer_rcpt(address_of(user), "451 4.7.1 Greylisted, try again later")
    uid = await publish(http, node, user, kind)
    start = time.time()
    clock.set(start)
    await mail()
    assert smtp.received == []
    assert [o for o, _ in await details(pool, uid)] == ["sending", "retry"]
    [job] = await jobs_of(pool, [uid])
    assert job["attempt"] == 2 and job["due_at"].timestamp() >= start + 30 - 1
    clock.set(start + 3600)
    await mail()
    assert len(messages(smtp, address_of(user))) == 1
    assert [(d["outcome"], d["attempt"]) for d in await _log(pool, uid)] == [
        ("sending", 1), ("retry", 1), ("sending", 2), ("sent", 2)]
    assert await jobs_of(pool, [uid]) == []
    assert (await shown(http, node, user))["email_status"] == "ok"


async def _log(pool, uid):
    from tidings.store import delivery_log

    return [d for d in await delivery_log.deliveries(pool, uid) if d["channel"] != "socket"]


async def test_tidings_serve_runs_an_email_worker_with_the_smtp_settings(
        http, settings, pool, smtp, user):
    await pool.execute("DELETE FROM tidings_push_jobs")
    served = replace(settings, push_workers=True, smtp_url=smtp.url(), email_from=SENDER,
                     public_url="https://tidings.example.com/")
    async with serve_node(served) as node:
        kind = type_name()
        await declare(http, node, kind, channels={"email": True})
        await profile(http, node, user, address_of(user))
        uid = await publish(http, node, user, kind, "through the node's own worker")

        async def arrived() -> bool:
            return bool(messages(smtp, address_of(user)))

        await eventually(arrived)
    [msg] = messages(smtp, address_of(user))
    link, _ = one_click_target(msg, node)  # signed with the node's JWT secret
    assert msg["List-Unsubscribe"] == f"<{link}>, <https://tidings.example.com/#prefs>"
    assert parts(msg)["text/plain"].strip() == "through the node's own worker"

    async def logged() -> bool:
        return [o for o, _ in await details(pool, uid)] == ["sending", "sent"]

    await eventually(logged)


async def next_of(frames, kind):
    async with asyncio.timeout(15):
        while True:
            msg = await anext(frames)
            if msg["type"] == kind:
                return msg


def one_click_target(msg, node) -> tuple[str, str]:
    """(the https one-click URL of ``msg``'s List-Unsubscribe, the same path on ``node``)."""
    urls = [u.strip().strip("<>") for u in str(msg["List-Unsubscribe"]).split(",")]
    assert urls[1:] == [PUBLIC + "/#prefs"]
    link = urllib.parse.urlsplit(urls[0])
    assert (link.scheme, link.netloc, link.path) == ("https", "tidings.example.com",
                                                     "/api/v1/unsubscribe")
    return urls[0], f"{node.url}{link.path}?{link.query}"


async def test_one_click_unsubscribe_turns_that_types_email_off_and_the_next_is_not_sent(
        http, node, settings, pool, smtp, clock, user):
    await pool.execute("DELETE FROM tidings_push_jobs")
    mailer = SmtpMailer(parse_smtp_url(smtp.url()), parse_sender(SENDER), timeout=10)
    links = one_click_links(replace(settings, public_url=PUBLIC + "/"))
    assert links is not None  # the test settings have a JWT secret

    async def mail() -> None:
        await EmailWorker(pool, mailer, WorkerConfig(name="e"), clock=clock,
                          preferences_url=PUBLIC + "/#prefs", unsubscribe=links).run(burst=True)

    kind, other = type_name(), type_name()
    for name in (kind, other):
        await declare(http, node, name, channels={"email": True})
    await profile(http, node, user, address_of(user))
    await publish(http, node, user, kind, "first")
    await mail()
    [msg] = messages(smtp, address_of(user))
    assert msg["List-Unsubscribe-Post"] == "List-Unsubscribe=One-Click"
    _, target = one_click_target(msg, node)

    listener = Subscriber(node.url, token(user))
    frames = aiter(listener)
    try:
        await next_of(frames, "counts")
        async with http.get(target) as r:  # a GET (a person, a link scanner) does not act
            assert r.status == 200 and r.content_type == "text/html"
            shown = await r.text()
        assert "<strong>Comments</strong>" in shown and 'method="post"' in shown
        assert 'name="List-Unsubscribe" value="One-Click"' in shown
        forged = target[:-3] + ("AAA" if not target.endswith("AAA") else "BBB")
        for method in ("GET", "POST"):
            async with http.request(method, forged, data={"List-Unsubscribe": "One-Click"}
                                    ) as r:
                assert r.status == 403
                assert (await r.json())["error"]["code"] == "invalid_unsubscribe_token"
        async with http.post(target.partition("?")[0], data={"List-Unsubscribe": "One-Click"}
                             ) as r:
            assert r.status == 400 and "token" in (await r.json())["error"]["message"]
        async with http.post(target, data={"List-Unsubscribe": "Maybe"}) as r:
            assert r.status == 400 and (await r.json())["error"]["code"] == "not_one_click"
        async with http.get(f"{node.url}/api/v1/me/preferences",
                            headers=user_headers(user)) as r:
            assert (await r.json())["types"][kind]["channels"] == {"email": True}
        for _ in range(2):  # a second POST answers the same and changes nothing more
            async with http.post(target, data={"List-Unsubscribe": "One-Click"}) as r:
                assert r.status == 200, await r.text()
                assert await r.json() == {"type": kind, "channel": "email", "enabled": False}
        frame = await next_of(frames, "preferences")
        assert frame["types"][kind]["channels"] == {"email": False}
    finally:
        await listener.close()

    off = await publish(http, node, user, kind, "second")
    still = await publish(http, node, user, other, "another type")
    await mail()
    assert [parts(m)["text/plain"].strip() for m in messages(smtp, address_of(user))] == [
        "first", "another type"]
    assert await details(pool, off) == [
        ("skipped", f"preference: the user turned email off for {kind}")]
    assert [o for o, _ in await details(pool, still)] == ["sending", "sent"]
    await mailer.close()


async def test_a_required_type_has_no_one_click_link_and_its_token_is_refused(
        http, node, settings, pool, smtp, clock, user):
    await pool.execute("DELETE FROM tidings_push_jobs")
    mailer = SmtpMailer(parse_smtp_url(smtp.url()), parse_sender(SENDER), timeout=10)
    links = one_click_links(replace(settings, public_url=PUBLIC))
    assert links is not None
    kind = type_name()
    await declare(http, node, kind, channels={"email": True}, required=True)
    await profile(http, node, user, address_of(user))
    await publish(http, node, user, kind, "a receipt")
    await EmailWorker(pool, mailer, WorkerConfig(name="e"), clock=clock,
                      preferences_url=PUBLIC + "/#prefs", unsubscribe=links).run(burst=True)
    await mailer.close()
    [msg] = messages(smtp, address_of(user))
    assert msg["List-Unsubscribe"] == f"<{PUBLIC}/#prefs>"
    assert msg["List-Unsubscribe-Post"] is None
    # a link made before the type became required
    target = links(user, kind).replace(PUBLIC, node.url)
    async with http.post(target, data={"List-Unsubscribe": "One-Click"}) as r:
        assert r.status == 400
        error = (await r.json())["error"]
    assert error["code"] == "required_type" and "required" in error["message"]
