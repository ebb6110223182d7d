"""The console's dead letters and push apps against the fake APNs: a real dead letter (APNs
answers 503 until the last attempt), requeued and then pushed, or discarded; each action
in the audit log; the push apps' configuration masked, their last hour counted."""

from __future__ import annotations

import json

from cryptography import x509
from push_helpers import CERT_TOPIC, add_device, jobs_of, outcomes, token_of, work

from tidings.core.push_apps import MASK
from tidings.services.context import SERVICES

from fakes.fake_apns import Answer
from helpers import ADMIN, new_user


async def dead_letter(http, node, redis, pool, apns, user: str) -> tuple[str, int, int]:
    """Send to ``user``'s phone through the console while APNs answers 503: (uid, device id,
    job id) of the dead letter it leaves."""
    dev = await add_device(pool, user)
    apns.answer(await token_of(pool, dev), Answer(503, "ServiceUnavailable"))
    async with http.post(f"{node.url}/api/v1/admin/notifications", headers=ADMIN, json={
            "recipients": [user], "message": "disk full", "push": {"when": "always"}}) as r:
        assert r.status == 201
        uid = (await r.json())["notifications"][0]["uid"]
    await work(node, redis, pool)
    [job] = await jobs_of(pool, [uid])
    assert job["dead"] and "ServiceUnavailable" in job["dead_reason"]
    return uid, dev, job["id"]


async def get(http, node, path):
    async with http.get(node.url + path, headers=ADMIN) as r:
        assert r.status == 200, await r.text()
        return await r.json()


async def post(http, node, path, body):
    async with http.post(node.url + path, headers=ADMIN, json=body) as r:
        assert r.status == 200, await r.text()
        return await r.json()


async def test_a_dead_letter_is_listed_requeued_and_then_pushed(console, http, redis, pool,
                                                                 apns):
    user = new_user("dead")
    uid, dev, job = await dead_letter(http, console, redis, pool, apns, user)
    listed = await get(http, console, "/api/v1/admin/dead-letters")
    [letter] = [j for j in listed["items"] if j["id"] == job]
    assert (letter["uid"], letter["user_id"], letter["devices"]) == (uid, user, [dev])
    assert letter["message"] == "disk full" and "ServiceUnavailable" in letter["reason"]

    assert await post(http, console, "/api/v1/admin/dead-letters/requeue",
                      {"ids": [job, job + 10**9]}) == {"requeued": [job],
                                                        "not_found": [job + 10**9]}
    [row] = await jobs_of(pool, [uid])
    assert (row["dead"], row["attempt"], row["dead_reason"], row["leased_by"]) == (
        False, 1, None, None)
    audit = await get(http, console, "/api/v1/admin/audit?limit=1")
    assert (audit["items"][0]["action"], audit["items"][0]["detail"]) == (
        "requeue", {"jobs": [job]})

    await work(console, redis, pool)  # APNs answers 200 now
    assert len(apns.to(await token_of(pool, dev))) == 2
    assert await jobs_of(pool, [uid]) == []
    assert await outcomes(pool, uid) == [("retry", dev, 1), ("dead", dev, 1), ("pushed", dev, 1)]
    log = await get(http, console, f"/api/v1/admin/notifications/{uid}/deliveries")
    assert [d["outcome"] for d in log["deliveries"]] == [
        "sending", "retry", "dead", "sending", "pushed"]
    assert job not in [j["id"] for j in
                       (await get(http, console, "/api/v1/admin/dead-letters"))["items"]]


async def test_a_dead_letter_discarded_is_gone_and_cannot_be_requeued(console, http, redis,
                                                                       pool, apns):
    uid, dev, job = await dead_letter(http, console, redis, pool, apns, new_user("gone"))
    assert await post(http, console, "/api/v1/admin/dead-letters/discard", {"ids": [job]}) == {
        "discarded": [job], "not_found": []}
    assert await jobs_of(pool, [uid]) == []
    audit = await get(http, console, "/api/v1/admin/audit?limit=1")
    assert audit["items"][0]["action"] == "discard"
    assert audit["items"][0]["detail"] == {"jobs": [job], "uids": [uid]}
    before = await pool.fetchval("SELECT count(*) FROM tidings_admin_audit")
    for action, key in (("requeue", "requeued"), ("discard", "discarded")):
        assert await post(http, console, f"/api/v1/admin/dead-letters/{action}",
                          {"ids": [job]}) == {key: [], "not_found": [job]}
    assert await pool.fetchval("SELECT count(*) FROM tidings_admin_audit") == before
    await work(console, redis, pool)
    assert len(apns.to(await token_of(pool, dev))) == 1  # never sent again


async def test_a_job_that_is_not_dead_is_not_touched(console, http, pool, apns):
    user = new_user("live")
    await add_device(pool, user)
    async with http.post(f"{console.url}/api/v1/admin/notifications", headers=ADMIN, json={
            "recipients": [user], "message": "queued", "push": {"when": "always"}}) as r:
        uid = (await r.json())["notifications"][0]["uid"]
    await console.app[SERVICES].publishing.retired()
    [job] = await jobs_of(pool, [uid])
    for action, key in (("requeue", "requeued"), ("discard", "discarded")):
        assert await post(http, console, f"/api/v1/admin/dead-letters/{action}",
                          {"ids": [job["id"]]}) == {key: [], "not_found": [job["id"]]}
    assert await jobs_of(pool, [uid]) == [job]


async def test_push_apps_masked_with_expiry_and_last_hour(console, http, redis, pool, apns,
                                                          apps, tls, p8):
    user = new_user("apps")
    ok, cert_dev = await add_device(pool, user), await add_device(pool, user, app_id=CERT_TOPIC)
    await add_device(pool, user, app_id="com.example.nowhere")
    apns.answer(await token_of(pool, cert_dev), Answer(400, "BadDeviceToken"))
    async with http.post(f"{console.url}/api/v1/admin/notifications", headers=ADMIN, json={
            "recipients": [user], "message": "hi", "push": {"when": "always"}}) as r:
        assert r.status == 201
    await work(console, redis, pool)
    assert len(apns.to(await token_of(pool, ok))) == 1

    answer = await get(http, console, "/api/v1/admin/push-apps")
    text = json.dumps(answer)
    assert p8[0] not in text and apps[2]["service_account"]["private_key"] not in text
    token_app, cert_app, fcm_app = answer["apps"]
    assert token_app["config"]["key"] == MASK and token_app["config"]["key_id"] == apps[0]["key_id"]
    assert fcm_app["config"]["service_account"]["private_key"] == MASK
    assert fcm_app["config"]["service_account"]["client_email"] == (
        apps[2]["service_account"]["client_email"])
    assert cert_app["config"]["cert_file"] == str(tls.client_pem)
    cert = x509.load_pem_x509_certificate(tls.client_pem.read_bytes())
    assert cert_app["credentials_expire_at"] == cert.not_valid_after_utc.isoformat()
    assert token_app["credentials_expire_at"] is None
    # other tests of the hour count too: at least this one's outcomes are there
    assert token_app["last_hour"]["sent"] >= 1
    assert cert_app["last_hour"]["outcomes"].get("deactivated", 0) >= 1
    assert cert_app["last_hour"]["errors"] >= 1
    assert answer["unconfigured"]["outcomes"].get("failed", 0) >= 1
