"""The hub's background loops: reading the node's inbox, the presence heartbeat, token
expiry and pings. Each runs until cancelled (:meth:`~.hub.Hub.stop`).

Contracts: the inbox is read in order from the last id handled; a failed read
(``None`` from the realtime service) and a heartbeat that finds Redis lost
this node's users resync every socket (events published meanwhile were
routed nowhere).
"""

from __future__ import annotations

import asyncio
import logging
import time
from typing import TYPE_CHECKING

from ..core.errors import BusUnavailable
from ..services.realtime import HEARTBEAT
from .timing import PING_PHASES

if TYPE_CHECKING:
    from .hub import Hub

log = logging.getLogger(__name__)

EXPIRY_TICK = 0.5  # seconds between sweeps of expired tokens


async def read_inbox(hub: Hub) -> None:
    async for batch in hub.realtime.events():
        if batch is None:
            hub.resync()
            continue
        for event in batch:
            hub.dispatch(event)


async def heartbeat(hub: Hub) -> None:
    while True:
        try:
            if await hub.realtime.beat(hub.rooms.users()):
                hub.resync()  # what was published before presence came back
        except BusUnavailable as exc:
            hub.realtime.report(exc)
            log.debug("heartbeat failed: %s", exc)
        await asyncio.sleep(HEARTBEAT)


async def sweep_expired(hub: Hub) -> None:
    while True:
        await asyncio.sleep(EXPIRY_TICK)
        hub.expire_due(time.time())


async def ping_sockets(hub: Hub) -> None:
    while True:
        await asyncio.sleep(hub.settings.ws_heartbeat / PING_PHASES)
        hub.ping_phase()
