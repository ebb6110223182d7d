"""PostgreSQL, the source of truth. Every SQL statement of Tidings lives in this package.

Functions take a pool or a connection; one given a pool holds a connection only for the call.

Modules:

- ``db``: pools and codecs.
- ``errors``: asyncpg's errors become the project's own.
- ``migrate``: schema migrations.
- ``publish``: storing publishes (notifications, counts, outbox).
- ``idempotency``: idempotency keys of producer publishes.
- ``streamed``: streamed publishes in progress.
- ``outbox``: committed publishes whose hand-off is not done.
- ``scheduled``: publishes asked for later.
- ``inbox``: reading notifications, counts, inbox actions.
- ``devices``: push devices.
- ``preferences``: users' preference choices.
- ``profiles``: users' profiles.
- ``types``: declared notification types.
- ``delivery_log``: the delivery log, and who a job goes to.
- ``push_jobs``: the push jobs owed for committed notifications.
- ``push_results``: what becomes of claimed push jobs.
- ``push_wake``: the connection that wakes push workers.
- ``digests``: digests and held sends.
- ``backlog``: what waits in PostgreSQL, in three numbers.
- ``admin``: the SQL of the operator's console.
"""
