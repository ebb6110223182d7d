"""Every Redis key name and stream field name Tidings uses, and nothing else.

Keys that one command touches together share a ``{hash tag}`` so that Redis
Cluster puts them in one slot; all other keys stand alone.
"""

PREFIX = "tidings"

#: Sorted set: node id -> last heartbeat (unix seconds). A node whose score is
#: older than the liveness window is ignored by publishers and cleaned up.
NODES = f"{PREFIX}:nodes"


#: A node's keys are ``NODE_HEAD + node id + tail`` (the routing script builds them so).
NODE_HEAD = f"{PREFIX}:{{node:"
INBOX_TAIL = "}:inbox"
USERS_TAIL = "}:users"
STATS_TAIL = "}:stats"


def node_inbox(node_id: str) -> str:
    """Stream of live events routed to one node; read with XREAD from its last id."""
    return f"{NODE_HEAD}{node_id}{INBOX_TAIL}"


#: Field of a node inbox stream entry holding the event (JSON, :mod:`tidings.core.events`).
INBOX_EVENT = "e"


def node_users(node_id: str) -> str:
    """Set of user ids with at least one open socket on one node."""
    return f"{NODE_HEAD}{node_id}{USERS_TAIL}"


def node_stats(node_id: str) -> str:
    """Hash of one node's figures (sockets, users, deliveries), rewritten with its heartbeat
    and expiring when the node stops writing it."""
    return f"{NODE_HEAD}{node_id}{STATS_TAIL}"


def push_throttle(minute: int) -> str:
    """Hash: device id -> pushes sent to it within one wall-clock minute."""
    return f"{PREFIX}:push:throttle:{minute}"
