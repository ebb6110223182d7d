"""Constants and data helpers shared by the push tests (the fixtures are in conftest)."""

from __future__ import annotations

import secrets
import uuid

TEAM_ID = "TEAM123456"
KEY_ID = "KEY1234567"
TOPIC = "com.example.app"
CERT_TOPIC = "com.example.cert"
PROJECT = "tidings-test"


def apns_token() -> str:
    return secrets.token_hex(32)


async def add_device(pool, user: str, platform: str = "apns", token: str | None = None,
                     app_id: str | None = None) -> int:
    token = token or (apns_token() if platform == "apns" else f"fcm-{secrets.token_hex(16)}")
    return await pool.fetchval(
        "INSERT INTO tidings_devices (user_id, platform, token, app_id) VALUES ($1, $2, $3, $4)"
        " RETURNING id", user, platform, token, app_id)


async def add_notification(pool, user: str, seq: int) -> str:
    uid = str(uuid.uuid4())
    await pool.execute(
        "INSERT INTO tidings_notifications (uid, user_id, seq, message) VALUES ($1, $2, $3, $4)",
        uid, user, seq, "hello")
    return uid


async def token_of(pool, device_id: int) -> str:
    return await pool.fetchval("SELECT token FROM tidings_devices WHERE id = $1", device_id)


async def outcomes(pool, uid: str, *, sending: bool = False) -> list[tuple]:
    """(outcome, device id, attempt) of the delivery log of ``uid``, oldest first."""
    from tidings.store import delivery_log

    return [(d["outcome"], d["device"] and d["device"]["id"], d["attempt"])
            for d in await delivery_log.deliveries(pool, uid)
            if sending or d["outcome"] != "sending"]


async def jobs_of(pool, uids: list[str]) -> list[dict]:
    rows = await pool.fetch(
        "SELECT j.*, n.uid::text AS uid FROM tidings_push_jobs j"
        " JOIN tidings_notifications n ON n.id = j.notification_id"
        " WHERE n.uid = ANY($1::uuid[]) ORDER BY j.id", uids)
    return [dict(r) for r in rows]


async def work(node, redis, pool) -> None:
    """One burst of a push worker with the node's settings."""
    from tidings.app import push_worker
    from tidings.services.context import SERVICES

    services = node.app[SERVICES]
    await services.publishing.retired()  # the jobs are written after the answer
    worker, registry = push_worker(services.settings, redis, pool)
    try:
        await worker.run(burst=True)
    finally:
        await registry.close()
