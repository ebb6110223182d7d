"""What the edges share on one node: settings, pools, clients and services."""

from __future__ import annotations

from dataclasses import dataclass

import asyncpg
import redis.asyncio as aioredis
from aiohttp import web

from ..auth import TokenVerifier
from ..bus.publisher import Publisher
from ..config import Settings
from ..core.ratelimit import RateLimiter
from .inbox import Inbox
from .publishing import Publishing


@dataclass
class Services:
    settings: Settings
    node_id: str
    pool: asyncpg.Pool
    redis: aioredis.Redis
    verifier: TokenVerifier
    publisher: Publisher
    publishing: Publishing
    inbox: Inbox
    user_limiter: RateLimiter | None = None
    producer_limiter: RateLimiter | None = None


SERVICES: web.AppKey[Services] = web.AppKey("services", Services)
