"""Handing push jobs to the workers: the policy applied with presence, one round trip.

Contract: :func:`enqueue_push` applies ``push.when`` with presence: sends go on
the ``PUSH_JOBS`` stream, ``unread_after`` checks into the ``PUSH_SCHEDULED``
sorted set (due time as score), all in one pipelined round trip.
"""

from __future__ import annotations

import time
from collections.abc import Collection, Iterable

import msgspec
import redis.asyncio as aioredis

from ..core.push import Decision, PushJob, decide, encode_job
from . import keys


async def enqueue_push(r: aioredis.Redis, jobs: Iterable[PushJob], online: Collection[str],
                       *, now: float | None = None) -> int:
    """Queue the pushes of a committed publish; ``online`` holds the users with a socket.

    ``offline`` jobs of online users and ``never`` jobs are dropped; ``unread_after``
    jobs are scheduled at ``now + after``. Returns how many jobs were queued.
    """
    now = time.time() if now is None else now
    count = 0
    async with r.pipeline(transaction=False) as pipe:
        for job in jobs:
            decision = decide(job.push, job.user_id in online)
            if decision is Decision.NOW:
                pipe.xadd(keys.PUSH_JOBS, {"job": encode_job(job)})
            elif decision is Decision.LATER:
                check = msgspec.structs.replace(job, check_unread=True)
                pipe.zadd(keys.PUSH_SCHEDULED, {encode_job(check): now + (job.push.after or 0)})
            else:
                continue
            count += 1
        if count:
            await pipe.execute()
    return count
