"""Live delivery on one node: the WebSocket endpoint, per-user rooms, the node's inbox reader.

Modules: ``connection`` (one socket: bounded send queue, ordering cursor),
``hub`` (rooms, presence, replay, dispatch of bus events, node lifecycle),
``ws`` (the aiohttp handler: origin, auth, client messages).
"""
