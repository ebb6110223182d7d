"""Push workers: claim the push jobs owed in PostgreSQL and send them, as a pipeline.

The loop (:class:`JobWorker`) is the e-mail worker's too; each channel brings its
own :class:`JobSender`.

Contract (at-least-once per job and device; the crash contract):

- Jobs are rows of ``tidings_push_jobs``, written with their notifications. A
  worker claims due jobs no live worker holds (``FOR UPDATE SKIP LOCKED``) under
  a lease of ``lease`` seconds (10), renewed every third of it while the job's
  sends are in flight. It claims more as jobs finish, up to twice the apps' capacity
  (streams or connections of each provider), so throughput is bounded by the
  provider connections, not by a batch. ``NOTIFY tidings_push`` wakes it; it
  polls every ``poll`` second as well.
- Before a send, its 'sending' row is committed. When a job's sends are over,
  their outcomes are logged in the transaction that deletes the job,
  reschedules it or makes it a dead letter.
- A worker that dies (SIGKILL, a lost machine) stops renewing: its jobs are
  claimed by another worker within ``lease`` + ``poll`` seconds (under 15 s).
  The devices with a final outcome are skipped, so **at most the sends that were
  in flight at the crash are repeated** (a send whose outcome was not yet
  committed); the delivery log shows each of them as a 'sending' row with no
  outcome. Every send carries the notification uid as its collapse id (APNs
  ``apns-collapse-id``, FCM collapse key and notification tag) unless the
  producer set one, so a device shows a repeated push once.
- Redis holds no job: it is used only for the per-device throttle, which is
  skipped while Redis is unavailable.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import random
import socket
import time
import uuid
from collections.abc import Callable, Collection, Sequence
from dataclasses import dataclass, field
from typing import ClassVar, Generic, Protocol, TypeVar

from ..core.errors import StoreError, StoreUnavailable
from ..core.push import Device
from ..push.registry import Registry
from ..services.metrics import Recorder
from ..store import push_jobs, push_results
from ..store.push_jobs import Claimed, Pool
from ..store.push_wake import WakeListener
from .push_send import Policy, Sender, Throttle
from .push_settle import Settler

log = logging.getLogger(__name__)


def worker_name(suffix: str | None = None) -> str:
    """The name a worker leases its jobs under: host, process id and ``suffix`` (random
    unless given: several workers of one process need distinct suffixes)."""
    return f"{socket.gethostname()}-{os.getpid()}-{suffix or uuid.uuid4().hex[:6]}"


@dataclass(frozen=True)
class WorkerConfig:
    name: str = field(default_factory=worker_name)  # leased_by of its jobs
    lease: float = 10.0  # seconds a claimed job stays this worker's without a renewal
    poll: float = 1.0  # seconds between claims when no NOTIFY comes
    claim_batch: int = 500  # jobs claimed by one statement at most
    # Jobs held at once; default: twice the apps' capacity, so that the provider
    # connections stay busy while finished jobs wait for their results to commit.
    max_in_flight: int | None = None
    max_attempts: int = 6  # sends of one job before it is a dead letter
    backoff_base: float = 5.0
    backoff_cap: float = 3600.0
    device_per_minute: int = 10  # pushes to one device per wall-clock minute
    sweep_every: float = 60.0  # seconds between sweeps of unused options rows


W = TypeVar("W")


class JobSender(Protocol[W]):
    """What the claim loop needs of a channel's sender: ``start`` decides a claimed batch
    (settling the jobs with nothing to send) and answers the work of the others;
    ``finish`` sends one job's work and settles it."""

    @property
    def metrics(self) -> Recorder: ...

    @property
    def settling(self) -> Collection[int]:
        """Jobs whose change is being written (a lease not renewed then is not lost)."""

    async def start(self, batch: Sequence[Claimed]) -> list[tuple[Claimed, W]]: ...

    async def finish(self, c: Claimed, work: W) -> None: ...


#: Builds a worker's sender from its two settlers (outcomes, and 'sending' rows).
SenderOf = Callable[[Settler, Settler], JobSender[W]]


class JobWorker(Generic[W]):
    """The claim, lease, renewal and settlement loop over the jobs of one ``channel``,
    holding at most ``capacity`` jobs; its sender does the channel's work. ``clock``
    (unix seconds; None: the database's time) is injectable."""

    channel: ClassVar[str]

    def __init__(self, pool: Pool, config: WorkerConfig, capacity: int,
                 clock: Callable[[], float] | None, sender_of: SenderOf[W]):
        self.pool, self.config, self.capacity, self.clock = pool, config, capacity, clock
        self.settler = Settler(pool, config.name, self._now)
        # 'sending' rows commit on flushes of their own: a send holds its connection
        # slot while it waits, so it does not queue behind large settlements.
        self.sending_log = Settler(pool, config.name, self._now, flushes=2)
        self.sender = sender_of(self.settler, self.sending_log)
        self._held: dict[int, asyncio.Task[None] | None] = {}  # None: being started
        self._stop = asyncio.Event()
        self._wake = asyncio.Event()
        self._slot = asyncio.Event()
        self._down = False

    def _now(self) -> float | None:
        return self.clock() if self.clock is not None else None

    def stop(self) -> None:
        """Ask :meth:`run` to claim no more and return once the jobs in flight are settled."""
        self._stop.set()
        self._wake.set()
        self._slot.set()

    async def run(self, *, burst: bool = False) -> None:
        """Work until :meth:`stop`; with ``burst``, until no job is due (raising on a
        database outage instead of waiting it out)."""
        self._stop.clear()
        listener = None if burst else WakeListener(self.pool, self._wake.set)
        helpers = [asyncio.create_task(self.settler.run(), name="push-settler"),
                   asyncio.create_task(self.sending_log.run(), name="push-sending-log"),
                   asyncio.create_task(self._renew(), name="push-leases")]
        try:
            await self._loop(burst, listener)
            while self._held:
                await asyncio.wait([t for t in self._held.values() if t is not None])
            await self.settler.flush()
            if burst:
                await push_results.sweep_options(self.pool)
        finally:
            tasks = [*helpers, *(t for t in self._held.values() if t is not None)]
            for task in tasks:
                task.cancel()
            for task in tasks:
                with contextlib.suppress(asyncio.CancelledError):
                    await task
            self._held.clear()
            if listener is not None:
                await listener.close()

    async def _loop(self, burst: bool, listener: WakeListener | None) -> None:
        cfg = self.config
        low_water = max(1, min(cfg.claim_batch, self.capacity) // 4)
        next_sweep = time.monotonic() + cfg.sweep_every
        while not self._stop.is_set():
            self._wake.clear()
            self._slot.clear()
            room = self.capacity - len(self._held)
            if self._held and room < low_water:
                await self._wait(self._slot)
                continue
            asked = min(room, cfg.claim_batch)
            try:
                if listener is not None:
                    await listener.ensure()
                got = await push_jobs.claim(self.pool, cfg.name, asked, cfg.lease, self._now(),
                                            self.channel)
                await self._start(got)
                if not burst and time.monotonic() >= next_sweep:
                    next_sweep = time.monotonic() + cfg.sweep_every
                    await push_results.sweep_options(self.pool)
            except (StoreUnavailable, StoreError) as exc:
                if burst:
                    raise
                if isinstance(exc, StoreUnavailable):
                    self.sender.metrics.dependency_error(exc.dependency)
                if not self._down:
                    log.warning("push worker waits for PostgreSQL: %s", exc)
                self._down = True
                await self._wait(self._wake)
                continue
            if self._down:
                log.info("push worker claims again")
                self._down = False
            if len(got) == asked:
                continue
            if burst:
                if not self._held:
                    return
                await self._wait(self._slot)
            else:
                await self._wait(self._wake)

    async def _wait(self, event: asyncio.Event) -> None:
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(event.wait(), self.config.poll)

    async def _start(self, batch: list[Claimed]) -> None:
        if not batch:
            return
        for c in batch:
            self._held[c.id] = None  # held (its lease renewed) from the claim on
        try:
            todo = await self.sender.start(batch)
        except BaseException:
            for c in batch:  # their leases run out; they are claimed again
                self._held.pop(c.id, None)
            raise
        for c, work in todo:
            task = asyncio.create_task(self.sender.finish(c, work))
            self._held[c.id] = task
            task.add_done_callback(lambda t, job=c.id: self._finished(job, t))

    def _finished(self, job_id: int, task: asyncio.Task[None]) -> None:
        self._held.pop(job_id, None)
        self._slot.set()
        if not task.cancelled() and task.exception() is not None:
            log.error("push job %d failed; its lease runs out and it is claimed again",
                      job_id, exc_info=task.exception())

    async def _renew(self) -> None:
        """Extend the leases of the jobs held, every third of a lease."""
        cfg = self.config
        while True:
            await asyncio.sleep(cfg.lease / 3)
            ids = list(self._held)
            try:
                kept = await push_jobs.renew(self.pool, cfg.name, ids, cfg.lease, self._now())
            except (StoreUnavailable, StoreError) as exc:
                log.warning("push leases not renewed: %s", exc)
                continue
            lost = [i for i in ids if i not in kept and i in self._held
                    and i not in self.sender.settling]  # settled meanwhile: not lost
            if lost:
                log.warning("push worker lost the lease of %d jobs to another worker", len(lost))


class PushWorker(JobWorker[list[Device]]):
    """One push worker: the loop over 'push' jobs, sending to each job's devices through
    ``registry``. ``rand`` is injectable; ``throttle`` (None: no throttle) counts pushes
    per device."""

    channel = "push"

    def __init__(self, pool: Pool, registry: Registry, config: WorkerConfig | None = None, *,
                 throttle: Throttle | None = None, clock: Callable[[], float] | None = None,
                 rand: Callable[[], float] = random.random, metrics: Recorder | None = None):
        cfg = config or WorkerConfig()
        policy = Policy(cfg.max_attempts, cfg.backoff_base, cfg.backoff_cap, cfg.device_per_minute)
        super().__init__(
            pool, cfg, cfg.max_in_flight or max(1, 2 * sum(a.capacity for a in registry.apps)),
            clock, lambda settler, sending_log: Sender(
                pool, registry, settler, sending_log, policy, throttle, clock or time.time, rand,
                metrics or Recorder()))
