"""Background work of a node: the outbox and schedule relay, and the push and e-mail workers.

Each worker runs forever with ``run()`` or drains what is due and returns with
``run(burst=True)``, so tests await it instead of sleeping.

Modules:

- ``relay``: finishes the hand-off of committed publishes, publishes due scheduled ones.
- ``push``: push workers: claim push jobs and send them, as a pipeline.
- ``push_send``: sending claimed push jobs.
- ``push_policy``: send-time channel decisions of a push worker.
- ``push_settle``: group commit of a push worker's writes.
- ``email``: the e-mail worker.
- ``email_send``: sending claimed e-mail jobs.
"""
