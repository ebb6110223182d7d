"""Push workers: consumers of the durable push job queue on Redis.

Contract (at-least-once per job, at-most-once per device and notification):

- Jobs arrive through :func:`tidings.bus.push_queue.enqueue_push`.
- A worker reads the stream in the ``PUSH_GROUP`` consumer group. For each job
  it resolves the user's active devices, sends to each (bounded per app,
  throttled per device and minute on the first attempt), and writes each
  device's outcome to PostgreSQL *before* it XACKs (and XDELs) the entry; a
  device with a final outcome for the notification is skipped, so a job taken
  over with XAUTOCLAIM from a dead worker is not pushed twice to a device.
- Devices that answered "retry" go back into ``PUSH_SCHEDULED`` as one job
  with ``attempt + 1`` after exponential backoff with jitter (at least the
  provider's Retry-After); the job after ``max_attempts`` sends goes to the
  ``PUSH_DEAD`` stream instead. Scheduling and the XACK are one transaction.
- Due scheduled jobs move to the stream atomically (a Lua script), so the
  schedule survives restarts; an ``unread_after`` job, when due, is pushed
  only if the notification is still ACTIVE and unread.
"""

from __future__ import annotations

import asyncio
import logging
import os
import random
import socket
import time
from collections.abc import Callable
from dataclasses import dataclass, field

import asyncpg
import msgspec
import redis.asyncio as aioredis
from redis.exceptions import RedisError, ResponseError

from ..bus import keys
from ..core.push import (
    Device,
    Outcome,
    PushJob,
    SendResult,
    backoff,
    decode_job,
    encode_job,
)
from ..push.registry import Registry
from ..store import push as store

log = logging.getLogger(__name__)

DEAD_MAXLEN = 100_000
_ROW = {Outcome.DELIVERED: "pushed", Outcome.INVALID_TOKEN: "deactivated",
        Outcome.RETRY: "retry", Outcome.FAILED: "failed"}

# KEYS: schedule, stream; ARGV: now, limit. Moves due jobs onto the stream.
_MOVE_DUE = """
local due = redis.call('ZRANGEBYSCORE', KEYS[1], '-inf', ARGV[1], 'LIMIT', 0, ARGV[2])
for _, job in ipairs(due) do
  redis.call('XADD', KEYS[2], '*', 'job', job)
  redis.call('ZREM', KEYS[1], job)
end
return #due
"""


def _consumer_name() -> str:
    return f"{socket.gethostname()}-{os.getpid()}"


@dataclass(frozen=True)
class WorkerConfig:
    consumer: str = field(default_factory=_consumer_name)
    batch: int = 50  # entries read (and sent concurrently) at once
    block_ms: int = 2000  # XREADGROUP BLOCK: well under the client's 5 s socket timeout
    # Seconds a pending entry sits before another worker takes it over: keep it above
    # the providers' send timeout (30 s), or a slow send may be taken over and repeated.
    claim_idle: float = 60.0
    max_attempts: int = 6  # sends of one job before the dead-letter stream
    backoff_base: float = 5.0
    backoff_cap: float = 3600.0
    device_per_minute: int = 10  # pushes to one device per wall-clock minute


class PushWorker:
    """One consumer of the push stream. ``clock`` (unix seconds) and ``rand`` are injectable."""

    def __init__(self, r: aioredis.Redis, pool: asyncpg.Pool, registry: Registry,
                 config: WorkerConfig | None = None, *,
                 clock: Callable[[], float] = time.time,
                 rand: Callable[[], float] = random.random):
        self.redis, self.pool, self.registry = r, pool, registry
        self.config = config or WorkerConfig()
        self.clock, self.rand = clock, rand
        self._move_due = r.register_script(_MOVE_DUE)
        self._stop = asyncio.Event()

    def stop(self) -> None:
        """Ask :meth:`run` to return after the current batch (within ``block_ms``)."""
        self._stop.set()

    async def run(self, *, burst: bool = False) -> None:
        """Work until :meth:`stop`; with ``burst``, return once nothing is due.

        A burst claims pending entries whatever their idle time, so it also takes
        over the jobs of a worker that died, and raises on a Redis error; a
        long-running worker logs the error and tries again a second later.
        """
        seen: set[bytes] = set()
        last_claim = float("-inf")
        group_ok = False
        while not self._stop.is_set():
            try:
                if not group_ok:  # first round, or after an error (a flushed Redis)
                    await self._ensure_group()
                    group_ok = True
                claim = burst or time.monotonic() - last_claim >= self.config.claim_idle / 2
                if claim:
                    last_claim = time.monotonic()
                if await self._step(burst, claim, seen):
                    return
            except (RedisError, OSError):
                if burst:
                    raise
                log.exception("push worker: Redis error; trying again")
                group_ok = False
                await asyncio.sleep(1)

    async def _step(self, burst: bool, claim: bool, seen: set[bytes]) -> bool:
        """Move due jobs, claim and read entries, handle them; True when a burst is over."""
        cfg = self.config
        moved = await self._move_due(keys=[keys.PUSH_SCHEDULED, keys.PUSH_JOBS],
                                     args=[self.clock(), cfg.batch])
        entries = await self._claim(0 if burst else cfg.claim_idle) if claim else []
        block = None if burst or entries or moved else cfg.block_ms
        entries += await self._read(block)
        entries = [(eid, fields) for eid, fields in entries if eid not in seen]
        if burst:
            seen.update(eid for eid, _ in entries)
            if not entries and not moved:
                return True
        await asyncio.gather(*(self._handle(eid, fields) for eid, fields in entries))
        return False

    async def _ensure_group(self) -> None:
        try:
            await self.redis.xgroup_create(keys.PUSH_JOBS, keys.PUSH_GROUP, id="0", mkstream=True)
        except ResponseError as exc:
            if "BUSYGROUP" not in str(exc):
                raise

    async def _claim(self, idle: float) -> list[tuple[bytes, dict]]:
        reply = await self.redis.xautoclaim(
            keys.PUSH_JOBS, keys.PUSH_GROUP, self.config.consumer,
            min_idle_time=int(idle * 1000), start_id="0-0", count=self.config.batch)
        return [(eid, fields) for eid, fields in reply[1] if fields]

    async def _read(self, block: int | None) -> list[tuple[bytes, dict]]:
        reply = await self.redis.xreadgroup(
            keys.PUSH_GROUP, self.config.consumer, {keys.PUSH_JOBS: ">"},
            count=self.config.batch, block=block)
        return [e for _stream, entries in reply or () for e in entries if e[1]]

    async def _handle(self, entry_id: bytes, fields: dict) -> None:
        """Send one entry's job, record outcomes, schedule retries, then XACK.

        An error leaves the entry pending: it is claimed again after ``claim_idle``.
        """
        raw = fields.get(b"job", b"")
        try:
            job = decode_job(raw)
        except ValueError as exc:
            log.error("push entry %s is not a job: %s", entry_id, exc)
            await self._finish(entry_id, dead={"job": raw, "reason": str(exc)})
            return
        try:
            results = await self.dispatch(job)
            retry = [(d, res) for d, res in results if res.outcome is Outcome.RETRY]
            if not retry:
                await self._finish(entry_id)
            elif job.attempt >= self.config.max_attempts:
                await store.record(self.pool, [
                    store.Record(job.uid, job.user_id, d.platform, "dead", d.id,
                                 f"gave up after {job.attempt} attempts", job.attempt)
                    for d, _res in retry])
                dead = msgspec.structs.replace(job, devices=[d.id for d, _ in retry])
                await self._finish(entry_id, dead={
                    "job": encode_job(dead), "reason": "; ".join(r.detail for _, r in retry)})
            else:
                delay = max(backoff(job.attempt, self.rand(), base=self.config.backoff_base,
                                    cap=self.config.backoff_cap, retry_after=res.retry_after)
                            for _d, res in retry)
                again = msgspec.structs.replace(job, attempt=job.attempt + 1,
                                                devices=[d.id for d, _ in retry])
                await self._finish(entry_id, later=(encode_job(again), self.clock() + delay))
        except Exception:
            log.exception("push job %s failed; left pending for a later claim", entry_id)

    async def _finish(self, entry_id: bytes, *, dead: dict | None = None,
                      later: tuple[bytes, float] | None = None) -> None:
        async with self.redis.pipeline(transaction=True) as pipe:
            if dead is not None:
                pipe.xadd(keys.PUSH_DEAD, dead, maxlen=DEAD_MAXLEN, approximate=True)
            if later is not None:
                pipe.zadd(keys.PUSH_SCHEDULED, {later[0]: later[1]})
            pipe.xack(keys.PUSH_JOBS, keys.PUSH_GROUP, entry_id)
            pipe.xdel(keys.PUSH_JOBS, entry_id)
            await pipe.execute()

    async def dispatch(self, job: PushJob) -> list[tuple[Device, SendResult]]:
        """Send ``job`` to the user's devices now, recording every outcome; no retries.

        Returns the (device, result) of each send made; what ``tidings push`` shows.
        """
        skip = None
        if job.check_unread and not await store.still_unread(self.pool, job.uid):
            skip = "read or removed before the push was due"
        else:
            devices = await store.active_devices(self.pool, job.user_id, job.devices)
            if not devices and job.devices is None:
                skip = "no active device"
        if skip:
            await store.record(self.pool, [store.Record(
                job.uid, job.user_id, "push", "skipped", None, skip, job.attempt)])
            return []
        done = await store.finished_devices(self.pool, job.uid)
        todo = [d for d in devices if d.id not in done]
        if job.attempt == 1:
            todo = await self._throttle(job, todo)
        return list(await asyncio.gather(*(self._send(d, job) for d in todo)))

    async def _throttle(self, job: PushJob, devices: list[Device]) -> list[Device]:
        """The devices still under ``device_per_minute`` this minute; the rest are logged."""
        if not devices:
            return devices
        minute = int(self.clock() // 60)
        async with self.redis.pipeline(transaction=False) as pipe:
            for d in devices:
                key = keys.push_throttle(str(d.id), minute)
                pipe.incr(key)
                pipe.expire(key, 120)
            counts = (await pipe.execute())[::2]
        limit = self.config.device_per_minute
        over = [d for d, n in zip(devices, counts, strict=True) if n > limit]
        await store.record(self.pool, [
            store.Record(job.uid, job.user_id, d.platform, "throttled", d.id,
                         f"over {limit} pushes per minute", job.attempt) for d in over])
        return [d for d, n in zip(devices, counts, strict=True) if n <= limit]

    async def _send(self, device: Device, job: PushJob) -> tuple[Device, SendResult]:
        app = self.registry.for_device(device)
        if app is None:
            result = SendResult(Outcome.FAILED, f"no push app configured for {device.platform}"
                                                f" app_id {device.app_id!r}")
            channel = device.platform
        else:
            channel = app.provider.name
            async with app.limit:
                try:
                    result = await app.provider.send(device, job)
                except Exception as exc:
                    log.exception("push provider %s raised", channel)
                    result = SendResult(Outcome.RETRY, f"provider error: {exc!r}")
        rec = store.Record(job.uid, job.user_id, channel, _ROW[result.outcome], device.id,
                           result.detail or None, job.attempt)
        if result.outcome is Outcome.INVALID_TOKEN:
            await store.deactivate(self.pool, device, rec, result.invalid_since)
        else:
            await store.record(self.pool, [rec])
        return device, result
