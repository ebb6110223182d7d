"""Redis: node presence, routed live events on per-node inbox streams, push job streams.

Modules: ``keys`` (every key name), ``connect`` (clients), ``presence`` (which
nodes hold which users), ``publisher`` (route an event to the nodes that need
it), ``inbox`` (a node reading its own stream).
"""
