"""The HTTP API: thin aiohttp handlers that validate, authenticate and call services.

Modules:

- ``http``: JSON replies, error bodies, who is calling (shared by the handlers).
- ``protocol``: requests aiohttp refuses before any handler runs.
- ``producer``: publishing notifications (API key); dev user tokens.
- ``inbox``: the caller's inbox, its pages and actions.
- ``devices``: the caller's push devices.
- ``preferences``: the caller's channel preferences.
- ``profiles``: users' profiles (producer key).
- ``types``: notification types (producer key).
- ``webpush``: the public VAPID key and the service worker.
- ``unsubscribe``: one-click e-mail unsubscribe links (RFC 8058).
- ``admin``: the operator's console page and its endpoints.
- ``admin_auth``: who may use the operator's console.
- ``demo``: the demo inbox page, the JavaScript client, dev tokens.
- ``health``: liveness and readiness.
- ``metrics``: ``GET /metrics`` on the main port.
- ``openapi``: the OpenAPI document of every endpoint.
- ``openapi_admin``: the console's operations in that document.
- ``openapi_schemas``: JSON Schemas of the answers, error statuses, stated limits.
"""
