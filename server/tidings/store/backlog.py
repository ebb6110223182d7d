"""What waits in PostgreSQL, in three numbers: due push jobs, their lag, outbox rows.

What may live here: the one read behind the queue gauges of ``/metrics``
(:mod:`tidings.services.metrics` caches it; it is not run per scrape).

Contract: :func:`read` is one statement over the partial index of due jobs
and the outbox's primary key; it changes nothing and raises only
:class:`~tidings.core.errors.StoreUnavailable` or
:class:`~tidings.core.errors.StoreError`. The numbers are the cluster's, not
one node's: every node reads the same tables.
"""

from __future__ import annotations

from dataclasses import dataclass

from .db import Pool
from .errors import store_edge

_READ = """
SELECT
    (SELECT count(*) FROM tidings_push_jobs WHERE NOT dead AND due_at <= now()) AS depth,
    (SELECT coalesce(extract(epoch FROM now() - min(due_at)), 0)::float8
     FROM tidings_push_jobs
     WHERE NOT dead AND due_at <= now() AND (lease_until IS NULL OR lease_until < now()))
        AS lag,
    (SELECT count(*) FROM tidings_outbox) AS outbox
"""


@dataclass(frozen=True, slots=True)
class Backlog:
    push_due: int  # jobs due now and not dead letters: waiting for a worker or being sent
    push_lag: float  # seconds the oldest due job no worker holds has waited past its due time
    outbox: int  # publishes committed whose hand-off (routing, push jobs) is not done


@store_edge
async def read(pool: Pool) -> Backlog:
    row = await pool.fetchrow(_READ)
    return Backlog(int(row["depth"]), max(0.0, float(row["lag"])), int(row["outbox"]))
