"""What becomes of claimed push jobs: outcomes logged with the job's change, dead letters,
and the sweep of unused options rows.

What may live here: the SQL that settles, lists and cleans up ``tidings_push_jobs``
and ``tidings_push_options`` after a claim (the claims are ``push_jobs``).

Contract: :func:`settle` writes a worker's log rows and job changes in one
transaction, and changes only jobs still leased to that worker. Every function
raises only :class:`~tidings.core.errors.StoreUnavailable` or
:class:`~tidings.core.errors.StoreError`.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

from . import delivery_log as log
from . import digests, profiles
from .errors import store_edge
from .push_jobs import NOW, Pool


def _ids(devices: Sequence[int]) -> str:
    return "{" + ",".join(map(str, devices)) + "}"


@dataclass(slots=True)
class Settlement:
    """What a worker writes at once: log rows, rejected tokens, and the jobs' next state."""

    records: list[log.Record] = field(default_factory=list)
    invalid: list[log.Invalid] = field(default_factory=list)
    done: list[int] = field(default_factory=list)  # jobs to delete
    retries: list[tuple[int, Sequence[int], float]] = field(default_factory=list)  # id, devices, s
    dead: list[tuple[int, Sequence[int], str]] = field(default_factory=list)  # id, devices, reason
    deferred: list[tuple[int, float]] = field(default_factory=list)  # id, due (unix seconds)
    holds: list[digests.Hold] = field(default_factory=list)  # jobs held for digests
    bounces: list[tuple[str, str, str]] = field(default_factory=list)  # user, address, answer

    def __bool__(self) -> bool:
        return bool(self.records or self.invalid or self.done or self.retries or self.dead
                    or self.deferred or self.holds or self.bounces)


@store_edge
async def settle(pool: Pool, worker: str, s: Settlement, now: float | None = None) -> None:
    """Write ``s`` in one transaction: log rows (deactivating rejected devices), delete the
    done jobs, reschedule retries (``attempt + 1``, lease cleared, due after the delay),
    move deferred jobs to their time (quiet hours), hold jobs for digests
    (:func:`tidings.store.digests.hold`), mark bouncing addresses
    (:func:`tidings.store.profiles.mark_bouncing`) and mark dead letters. Jobs no longer leased to
    ``worker`` are left alone (options rows left unused are for :func:`sweep_options`)."""
    async with pool.acquire() as c, c.transaction():
        await log.record(c, [*s.records, *await log.deactivate(c, s.invalid)])
        if s.done:
            await c.execute(
                "DELETE FROM tidings_push_jobs WHERE id = ANY($1::bigint[]) AND leased_by = $2",
                s.done, worker)
        if s.retries:
            await c.execute(
                f"UPDATE tidings_push_jobs j SET attempt = j.attempt + 1,"
                f" devices = r.devices::bigint[], lease_until = NULL, leased_by = NULL,"
                f" due_at = {NOW} + make_interval(secs => r.delay)"
                " FROM unnest($2::bigint[], $3::text[], $4::float8[]) AS r(id, devices, delay)"
                " WHERE j.id = r.id AND j.leased_by = $5",
                now, [r[0] for r in s.retries], [_ids(r[1]) for r in s.retries],
                [r[2] for r in s.retries], worker)
        if s.deferred:
            await c.execute(
                "UPDATE tidings_push_jobs j SET due_at = to_timestamp(r.due),"
                " lease_until = NULL, leased_by = NULL"
                " FROM unnest($1::bigint[], $2::float8[]) AS r(id, due)"
                " WHERE j.id = r.id AND j.leased_by = $3",
                [d[0] for d in s.deferred], [d[1] for d in s.deferred], worker)
        if s.holds:
            await digests.hold(c, worker, s.holds, now)
        await profiles.mark_bouncing(c, s.bounces, now)
        if s.dead:
            await c.execute(
                "UPDATE tidings_push_jobs j SET dead = true, dead_reason = r.reason,"
                " devices = r.devices::bigint[], lease_until = NULL, leased_by = NULL"
                " FROM unnest($1::bigint[], $2::text[], $3::text[]) AS r(id, devices, reason)"
                " WHERE j.id = r.id AND j.leased_by = $4",
                [d[0] for d in s.dead], [_ids(d[1]) for d in s.dead], [d[2] for d in s.dead],
                worker)


@store_edge
async def sweep_options(pool: Pool) -> int:
    """Delete the options rows no job uses any more; returns how many. (Not done job by
    job: right after a large publish's jobs are deleted, each check would walk their
    dead index entries.)"""
    status = await pool.execute(
        "DELETE FROM tidings_push_options o WHERE NOT EXISTS"
        " (SELECT 1 FROM tidings_push_jobs j WHERE j.options_id = o.id)")
    return int(status.split()[-1])


@store_edge
async def dead_letters(pool: Pool, limit: int = 100) -> list[dict[str, Any]]:
    """The newest dead jobs: ``{"id", "uid", "user_id", "attempt", "devices", "reason"}``."""
    rows = await pool.fetch(
        "SELECT j.id, n.uid::text AS uid, n.user_id, j.attempt, j.devices,"
        " j.dead_reason AS reason FROM tidings_push_jobs j"
        " JOIN tidings_notifications n ON n.id = j.notification_id"
        " WHERE j.dead ORDER BY j.id DESC LIMIT $1", limit)
    return [dict(r) for r in rows]
