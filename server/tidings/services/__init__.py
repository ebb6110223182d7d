"""Use cases shared by the edges (HTTP API, gateway, CLI, workers).

A service combines store, bus and push adapters for one job (publish a
notification, apply an inbox action); edges translate requests into calls.
"""
