"""Background work of a node: the outbox and schedule relay, and the push workers.

Each worker runs forever with ``run()`` or drains what is due and returns with
``run(burst=True)``, so tests await it instead of sleeping.
"""
