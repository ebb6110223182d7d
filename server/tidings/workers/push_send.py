"""Sending claimed push jobs: devices, throttle, the 'sending' rows, sends, the job's fate.

What may live here: what happens to a batch of leased jobs between the claim
and the settlement (the loop that claims is :mod:`tidings.workers.push`).

Contract, per batch (:meth:`Sender.start`): the jobs that need no send (an
``unread_after`` check of a notification read or removed, a send-time decision
of :mod:`.push_policy` not to send now, no active device, every device
throttled, turned off by its channel's preference or already finished before a
takeover) are settled at once; the
others' sends run concurrently, each once it holds a slot of its app, and each
only after its 'sending' row is committed (the rows of sends starting together
share a transaction). When a job's sends are over, their outcomes are written
in the transaction that deletes the job, reschedules it for the devices that
asked to retry (``attempt + 1``, backoff with jitter, at least Retry-After) or
makes it a dead letter after ``max_attempts``. Browser devices are sent the
job's content rendered for them (:attr:`.push_policy.Decided.web`) when it has one.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Protocol

from ..core.errors import BusUnavailable
from ..core.push import Device, Outcome, PushJob, SendResult, backoff
from ..push.registry import Registry
from ..services.metrics import Recorder
from ..store import delivery_log
from ..store.delivery_log import Invalid, Record
from ..store.push_jobs import Claimed, Pool
from .push_policy import Decisions, device_channel
from .push_settle import JobLog, Settler

log = logging.getLogger(__name__)
_ROW = {Outcome.DELIVERED: "pushed", Outcome.INVALID_TOKEN: "deactivated",
        Outcome.RETRY: "retry", Outcome.FAILED: "failed"}


class Throttle(Protocol):
    """What the sender needs of :class:`tidings.bus.throttle.Throttle`."""

    async def count_pushes(self, device_ids: Sequence[int], minute: int) -> list[int]: ...


@dataclass(frozen=True)
class Policy:
    max_attempts: int
    backoff_base: float
    backoff_cap: float
    device_per_minute: int


class Sender:
    def __init__(self, pool: Pool, registry: Registry, settler: Settler,
                 sending_log: Settler, policy: Policy, throttle: Throttle | None,
                 wall_clock: Callable[[], float], rand: Callable[[], float],
                 metrics: Recorder):
        self._pool, self._registry, self._settler = pool, registry, settler
        self.metrics = metrics
        self._sending_log = sending_log
        self._policy, self._throttle = policy, throttle
        self._wall_clock, self._rand = wall_clock, rand
        self._throttle_down = False
        self._logs: dict[int, JobLog] = {}  # job id -> its rows not yet written
        self._decisions = Decisions(pool)
        self._not_now: set[int] = set()  # jobs decided not to be sent now
        self._off: dict[int, Mapping[str, str]] = {}  # job id -> channels not to send to
        self._web: dict[int, PushJob] = {}  # job id -> its content for browser devices
        self.settling: set[int] = set()  # jobs whose change is being written

    def channel(self, device: Device) -> str:
        app = self._registry.for_device(device)
        return app.provider.name if app is not None else device.platform

    async def start(self, batch: Sequence[Claimed]) -> list[tuple[Claimed, list[Device]]]:
        """Each job of ``batch`` with the devices to send it to; a job with none (skipped,
        throttled, finished) has an empty list. Run :meth:`finish` for every pair."""
        for c in batch:
            self._logs[c.id] = JobLog()
        try:
            return await self._start(batch)
        except BaseException:
            for c in batch:
                self._logs.pop(c.id, None)
                self._not_now.discard(c.id)
                self._off.pop(c.id, None)
                self._web.pop(c.id, None)
            raise

    async def _start(self, batch: Sequence[Claimed]) -> list[tuple[Claimed, list[Device]]]:
        todo: list[tuple[Claimed, list[Device]]] = []
        batch = await self._decided(batch)
        devices = await delivery_log.active_devices(
            self._pool, [c.job.user_id for c in batch if c.job is not None])
        for c in batch:
            devs: list[Device] = []
            if c.job is None:
                log.error("push job %d is not valid: %s", c.id, c.invalid)
            elif c.id in self._not_now:
                self._not_now.discard(c.id)
            elif c.check_unread and not c.unread:
                self._skip(c, "read or removed before the push was due")
            else:
                devs = devices.get(c.job.user_id, [])
                if c.devices is not None:
                    devs = [d for d in devs if d.id in c.devices]
                if not devs:
                    self._skip(c, "no active device")
                devs = self._channels_on(c, devs)
            todo.append((c, devs))
        taken = [c.job.uid for c, devs in todo if c.taken_over and devs and c.job]
        if taken:
            done = await delivery_log.finished(self._pool, taken)
            todo = [(c, [d for d in devs if c.job and (c.job.uid, d.id) not in done])
                    for c, devs in todo]
        return await self._throttled(todo)

    async def _decided(self, batch: Sequence[Claimed]) -> list[Claimed]:
        """``batch`` after the send-time decisions (:mod:`.push_policy`): each job with its
        content to send; those not sent now are in ``_not_now``, their fate in their log."""
        valid = [c for c in batch if c.job is not None and not (c.check_unread and not c.unread)]
        if not valid:
            return list(batch)
        decided = {d.job.id: d for d in await self._decisions.decide(valid, self._wall_clock())}
        out = []
        for c in batch:
            d = decided.get(c.id)
            if d is None:
                out.append(c)
                continue
            job_log = self._logs[c.id]
            if d.record is not None:
                job_log.records.append(d.record)
            if d.off:
                self._off[c.id] = d.off
            if d.web is not None:
                self._web[c.id] = d.web
            if not d.send:
                job_log.deferred, job_log.held = d.deferred, d.held
                self._not_now.add(c.id)
            out.append(d.job)
        return out

    def _channels_on(self, c: Claimed, devices: list[Device]) -> list[Device]:
        """``devices`` without those of the channels the decision turned off (push: mobile,
        web_push: browsers), each of them logged 'skipped' with the reason."""
        off = self._off.pop(c.id, None)
        if not off or c.job is None:
            return devices
        kept = []
        for d in devices:
            why = off.get(device_channel(d.platform))
            if why is None:
                kept.append(d)
            else:
                self._logs[c.id].records.append(Record(
                    c.job.uid, c.job.user_id, self.channel(d), "skipped", d.id, why, c.attempt))
        return kept

    def _skip(self, c: Claimed, detail: str) -> None:
        assert c.job is not None
        self._logs[c.id].records.append(Record(c.job.uid, c.job.user_id, "push", "skipped",
                                               None, detail, c.attempt))

    async def _throttled(self, todo: list[tuple[Claimed, list[Device]]]
                         ) -> list[tuple[Claimed, list[Device]]]:
        """``todo`` without the devices over ``device_per_minute`` (first attempts only)."""
        first = [(c, d) for c, devs in todo if c.attempt == 1 for d in devs]
        if self._throttle is None or not first:
            return todo
        try:
            counts = await self._throttle.count_pushes(
                [d.id for _, d in first], int(self._wall_clock() // 60))
        except BusUnavailable as exc:
            if not self._throttle_down:
                log.warning("push throttle off while Redis is unavailable: %s", exc)
            self._throttle_down = True
            return todo
        self._throttle_down = False
        limit = self._policy.device_per_minute
        over = {(c.id, d.id) for (c, d), n in zip(first, counts, strict=True) if n > limit}
        for c, d in first:
            if (c.id, d.id) in over and c.job is not None:
                self._logs[c.id].records.append(Record(
                    c.job.uid, c.job.user_id, self.channel(d), "throttled", d.id,
                    f"over {limit} pushes per minute", c.attempt))
        return [(c, [d for d in devs if (c.id, d.id) not in over]) for c, devs in todo]

    async def finish(self, c: Claimed, devices: list[Device]) -> None:
        """Send ``c`` to ``devices`` (none: nothing to send), then settle the job together
        with its log rows (written in one transaction)."""
        try:
            await self._finish(c, devices, self._logs[c.id])
        finally:
            self._logs.pop(c.id, None)
            self._web.pop(c.id, None)
            self.settling.discard(c.id)

    async def _finish(self, c: Claimed, devices: list[Device], log_: JobLog) -> None:
        if c.job is None:
            self.settling.add(c.id)
            await self._settler.dead(c.id, [], c.invalid or "not a push job", log_)
            return
        if len(devices) == 1:  # most users have one device: no gather
            results = [await self._send(c, devices[0], log_)]
        else:
            results = await asyncio.gather(*(self._send(c, d, log_) for d in devices))
        retry = [(d, r) for d, r in zip(devices, results, strict=True)
                 if r.outcome is Outcome.RETRY]
        self.settling.add(c.id)
        if not retry:
            await self._settler.done(c.id, log_)
        elif c.attempt >= self._policy.max_attempts:
            log_.records.extend(
                Record(c.job.uid, c.job.user_id, self.channel(d), "dead", d.id,
                       f"gave up after {c.attempt} attempts", c.attempt) for d, _ in retry)
            await self._settler.dead(c.id, [d.id for d, _ in retry],
                                     "; ".join(r.detail for _, r in retry), log_)
        else:
            p = self._policy
            delay = max(backoff(c.attempt, self._rand(), base=p.backoff_base, cap=p.backoff_cap,
                                retry_after=r.retry_after) for _, r in retry)
            await self._settler.retry(c.id, [d.id for d, _ in retry], delay, log_)

    async def _send(self, c: Claimed, device: Device, log_: JobLog) -> SendResult:
        assert c.job is not None
        job = self._web.get(c.id, c.job) if device.platform == "webpush" else c.job
        app = self._registry.for_device(device)
        if app is None:
            result = SendResult(Outcome.FAILED, f"no push app configured for {device.platform}"
                                                f" app_id {device.app_id!r}")
        else:
            async with app.limit:
                await self._sending_log.sending(Record(c.job.uid, c.job.user_id, app.provider.name,
                                                   "sending", device.id, None, c.attempt))
                started = time.perf_counter()
                try:
                    result = await app.provider.send(device, job)
                except Exception as exc:
                    log.exception("push provider %s raised", app.provider.name)
                    result = SendResult(Outcome.RETRY, f"provider error: {exc!r}")
                self.metrics.pushed(app.provider.name, result.outcome.value,
                                    time.perf_counter() - started)
        rec = Record(c.job.uid, c.job.user_id, self.channel(device), _ROW[result.outcome],
                     device.id, result.detail or None, c.attempt)
        if result.outcome is Outcome.INVALID_TOKEN:
            log_.invalid.append(Invalid(rec, result.invalid_since))
        else:
            log_.records.append(rec)
        return result
