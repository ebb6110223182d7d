"""The outbox: publishes committed whose hand-off (live routing, push jobs) is not done.

What may live here: the SQL of ``tidings_outbox``.

The publishing statement inserts one row per publish (``store.publish``). Once
its event is routed and presence is known, :func:`retire` deletes the row and
writes the publish's owed jobs (pushes and e-mails) in one transaction, so the row and the
jobs are never both absent: a push owed for a stored notification is either
still in the outbox or a job. Rows left behind (Redis was down, the node
died) are claimed by the relay with ``SKIP LOCKED`` (one node at a time
handles each) and retired in the claiming transaction.

A row's ``push`` says what it still owes: :func:`pushes_handed_off` sets it to
:data:`HANDED_OFF` once its jobs are written without presence (Redis stayed
down), so the row then owes only its live delivery. (A row whose publish owes no
push, ``{"when": "never"}``, may still owe e-mails: only the marker stops jobs.)
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

import asyncpg

from .db import Connection, Pool, connection, transaction
from .errors import store_edge
from .push_jobs import OwedPush, add

#: The ``push`` of a row whose jobs were handed off: it owes no push or e-mail any more.
HANDED_OFF = {"when": "never", "handed_off": True}


def handed_off(push: dict | None) -> bool:
    return bool((push or {}).get("handed_off"))


def push_of(push: dict | None) -> dict | None:
    """A row's push options as a publish gave them (without the hand-off marker)."""
    if push is None or "handed_off" not in push:
        return push
    return {k: v for k, v in push.items() if k != "handed_off"}


@store_edge
async def retire(conn: Connection | Pool, owed: Mapping[int, Sequence[OwedPush]]) -> int:
    """Delete the outbox rows keyed in ``owed`` and write their push jobs, in one transaction.

    Only rows this call deletes get jobs (a row another node retired or handed
    off meanwhile gets none from here), so no job is written twice. On a pool a
    transaction is opened (unless no job is owed: then the delete is one
    statement); on a connection, run inside the caller's transaction. Returns
    how many rows were deleted.
    """
    if not any(owed.values()):  # nothing owed (e.g. every recipient online): one statement
        if not owed:
            return 0
        done = await conn.execute("DELETE FROM tidings_outbox WHERE id = ANY($1::bigint[])",
                                  list(owed))
        return int(done.split()[-1])
    if isinstance(conn, asyncpg.Pool):
        async with connection(conn) as c, transaction(c):
            return await retire(c, owed)
    deleted = await conn.fetch(
        "DELETE FROM tidings_outbox WHERE id = ANY($1::bigint[])"
         " RETURNING id, coalesce((push->>'handed_off')::bool, false) AS no_push", list(owed))
    jobs = [o for r in deleted if not r["no_push"] for o in owed[r["id"]]]
    await add(conn, jobs)
    return len(deleted)


@store_edge
async def pushes_handed_off(conn: Connection, owed: Mapping[int, Sequence[OwedPush]]) -> None:
    """Write the jobs of rows claimed by the caller and mark the rows as owing no push.

    Call inside the transaction that claimed the rows (:func:`claim_stale`); the
    rows stay for their live delivery.
    """
    await add(conn, [o for jobs in owed.values() for o in jobs])
    await conn.execute("UPDATE tidings_outbox SET push = $2 WHERE id = ANY($1::bigint[])",
                       list(owed), HANDED_OFF)


@store_edge
async def claim_stale(conn: Connection, older_than: float,
                      limit: int) -> list[asyncpg.Record]:
    """Lock up to ``limit`` rows older than ``older_than`` seconds, oldest first.

    Call inside a transaction. Each row has ``id``, ``notification_ids``, ``push``
    and ``age`` (seconds since it was written).
    """
    return await conn.fetch(
        "SELECT id, notification_ids, push,"
        " extract(epoch FROM now() - created_at)::float8 AS age FROM tidings_outbox"
        " WHERE created_at < now() - make_interval(secs => $1)"
        " ORDER BY id LIMIT $2 FOR UPDATE SKIP LOCKED",
        older_than, limit,
    )
