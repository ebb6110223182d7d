"""Redis: node presence, routed live events on per-node inbox streams, push throttles.

Modules:

- ``keys``: every Redis key and stream field name.
- ``connect``: the Redis clients.
- ``errors``: redis-py's errors become the project's own.
- ``presence``: which live nodes hold sockets of which users.
- ``node_presence``: one node's upkeep of its own presence.
- ``publisher``: route an event to the inbox streams of the nodes that need it.
- ``node_inbox``: a node reading its own inbox stream.
- ``node_stats``: nodes' figures for the operator's console.
- ``throttle``: the per-device push throttle.
"""
