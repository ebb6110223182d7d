"""PostgreSQL, the source of truth. Every SQL statement of Tidings lives in this package.

Modules: ``db`` (pool, codecs, holding connections), ``errors`` (the edge),
``migrate`` (schema versions), ``publish`` (storing publishes), ``inbox``
(reading notifications, counts, inbox actions), ``devices``, ``idempotency``,
``outbox``, ``scheduled``, ``push`` (deliveries) and ``push_jobs``.
Functions take a pool or a connection; one given a pool holds a connection only for the call.
"""
