"""Live delivery on one node: the WebSocket endpoint, per-user rooms, each socket's session.

Modules:

- ``ws``: ``GET /ws/me/notifications``, the upgrade.
- ``admit``: admission of a socket: Origin, ``since``, the token.
- ``connection``: one socket after its handshake, with a bounded send queue.
- ``messages``: client messages on an admitted socket.
- ``hub``: glue between the node's sockets, their sessions and the realtime service.
- ``hub_loops``: the hub's background loops: the node's inbox, heartbeat, expiries, pings.
- ``rooms``: the sockets of each user on this node.
- ``timing``: token expiries and ping phases of the node's sockets.
- ``delivery_log``: which stored notifications reached or were acked by a socket.
- ``node_sample``: this node's figures for its stats beat.
"""
