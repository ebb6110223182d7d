"""Use cases shared by the edges (HTTP API, gateway, CLI, workers).

A service combines store, bus and push adapters for one job (publish a
notification, apply an inbox action); edges translate requests into calls.

Modules:

- ``context``: what the edges share on one node.
- ``publishing``: store a notification durably, route it live, hand its pushes off.
- ``drafting``: from a publish request to a draft, and from what was stored to its answer.
- ``handoff``: the push and e-mail jobs a routed publish owes.
- ``streaming``: large publishes stored in chunks, and their completion by the relay.
- ``coalesce``: the requests of one moment served by one round trip.
- ``attempts``: idempotent writes whose outcome may be unknown, settled by retrying.
- ``realtime``: what a node's gateway needs from PostgreSQL and Redis.
- ``inbox``: one user's inbox: pages, actions, counts.
- ``devices``: the calling user's push devices.
- ``preferences``: the calling user's channel preferences.
- ``profiles``: users' profiles (producer API).
- ``types``: declared notification types.
- ``deliveries``: where one stored notification went.
- ``admin``: what the operator's console reads and does.
- ``subscribers``: the known users a declared type reaches, page by page.
- ``health``: which of PostgreSQL and Redis is down.
- ``metrics``: the Prometheus metrics of one process.
- ``node_stats``: a node's stats beat.
"""
