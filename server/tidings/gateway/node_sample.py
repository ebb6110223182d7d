"""This node's figures for its stats beat (:mod:`tidings.services.node_stats`).

Contract: a sample reads the hub's rooms and its socket delivery log's running
total; it changes nothing. Deliveries are notifications delivered to a user's
sockets here (one per user and notification, as the delivery log counts them).
"""

from __future__ import annotations

from ..services.node_stats import Sample
from .hub import Hub


def sample(hub: Hub) -> Sample:
    rooms = hub.rooms
    return Sample(sockets=sum(1 for _ in rooms.sockets()), users=len(rooms),
                  delivered=hub.delivery_log.total)
