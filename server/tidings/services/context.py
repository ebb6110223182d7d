"""What the edges share on one node: settings, pools, clients and services."""

from __future__ import annotations

from dataclasses import dataclass

from aiohttp import web

from ..auth import TokenVerifier
from ..bus.connect import Redis
from ..bus.publisher import Publisher
from ..config import Settings
from ..core.ratelimit import RateLimiter
from ..store.db import Pool
from .devices import Devices
from .health import Health
from .inbox import Inbox
from .metrics import Metrics
from .preferences import Preferences
from .profiles import Profiles
from .publishing import Publishing
from .types import Types


@dataclass
class Services:
    settings: Settings
    node_id: str
    pool: Pool
    redis: Redis
    verifier: TokenVerifier
    publisher: Publisher
    publishing: Publishing
    inbox: Inbox
    devices: Devices
    health: Health
    types: Types
    profiles: Profiles
    preferences: Preferences
    user_limiter: RateLimiter | None = None
    producer_limiter: RateLimiter | None = None
    vapid_public_key: str | None = None  # Web Push applicationServerKey; None: no VAPID key
    metrics: Metrics | None = None  # None: TIDINGS_METRICS=false


SERVICES: web.AppKey[Services] = web.AppKey("services", Services)
