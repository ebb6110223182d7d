"""PostgreSQL, the source of truth. Every SQL statement of Tidings lives in this package.

Modules: ``db`` (pool and codecs), ``migrate`` (schema versions), ``inbox``
(notifications and counts), ``devices``, ``outbox``, and ``push`` (deliveries).
Functions take an asyncpg pool or connection; none opens its own.
"""
