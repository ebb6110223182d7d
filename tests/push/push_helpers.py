"""Constants and data helpers shared by the push tests (the fixtures are in conftest)."""

from __future__ import annotations

import asyncio
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


async def eventually(check, within: float = 60.0) -> None:
    """Wait until ``await check()`` is true; fail after ``within`` seconds."""
    deadline = asyncio.get_running_loop().time() + within
    while not await check():
        if asyncio.get_running_loop().time() > deadline:
            raise AssertionError(f"{check.__name__} still false after {within} s")
        await asyncio.sleep(0.05)
