"""The Prometheus metrics of one node (or one ``tidings worker``): every metric object and how
each value is recorded.

What may live here: the metric names, their help and buckets, the hooks the
instrumented code calls (:class:`Recorder`), and the text exposition.

Contracts:

- One :class:`Metrics` per node, with a registry of its own (a process may run
  several nodes: the tests do). The code it measures calls the hooks of
  :class:`Recorder`; a node built without metrics (``TIDINGS_METRICS=false``)
  gets a plain :class:`Recorder`, whose hooks do nothing.
- Hot paths stay cheap. Counters are plain integers bumped once per event
  dispatched, fetch answered, socket closed or error seen (never once per
  recipient), and turned into samples only when scraped. Sockets open and
  users online are read from the hub's rooms when scraped, not counted on
  connect. Histograms are observed once per publish and once per push send.
- The queue gauges (push jobs due, their lag, outbox rows) come from one
  statement (:mod:`tidings.store.backlog`) run at most once per
  ``backlog_ttl`` seconds whatever the number of scrapes, and by one scrape at
  a time. While PostgreSQL does not answer they are left out of the scrape
  (the failure is reported as a dependency error) rather than shown stale.
- Names, label names and label values are those listed in the README
  ("Metrics"); counters start at zero for every label value known in advance.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections import Counter
from collections.abc import Awaitable, Callable, Iterable, Iterator
from typing import Any

from prometheus_client import (
    CollectorRegistry,
    Histogram,
    ProcessCollector,
    disable_created_metrics,
    generate_latest,
)
from prometheus_client.exposition import CONTENT_TYPE_PLAIN_0_0_4
from prometheus_client.metrics_core import CounterMetricFamily, GaugeMetricFamily, Metric

from ..core import events
from ..core.errors import StoreError, StoreUnavailable, Unavailable
from ..core.push import Outcome
from ..store.backlog import Backlog

log = logging.getLogger(__name__)

#: The Content-Type of :meth:`Metrics.exposition` (the Prometheus text format 0.0.4).
CONTENT_TYPE = CONTENT_TYPE_PLAIN_0_0_4
#: Seconds the queue gauges are kept before the next scrape reads them again.
BACKLOG_TTL = 5.0

DELIVERY_KINDS = ("notification", "live", "counts", "preferences")
DEPENDENCIES = ("postgres", "redis")
OUTCOMES = tuple(o.value for o in Outcome)

PUBLISH_SECONDS = (0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0,
                   30.0)
RECIPIENTS = (1, 2, 5, 10, 50, 100, 500, 1000, 5000, 10000)
PUSH_SECONDS = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0)

# ``_created`` series would double the names to watch for nothing a rate() needs.
disable_created_metrics()


def delivery_kind(event: dict[str, Any]) -> str:
    """``notification`` (stored), ``live`` (``persist: false``), ``counts`` or
    ``preferences``."""
    if event["k"] == events.COUNTS:
        return "counts"
    if event["k"] == events.PREFERENCES:
        return "preferences"
    rows = event["r"]
    return "live" if rows and rows[0][3] is None else "notification"


class Recorder:
    """The hooks the measured code calls; this one records nothing (metrics off)."""

    def delivered(self, event: dict[str, Any], sockets: int) -> None:
        """``event`` was dispatched to ``sockets`` sockets of this node."""

    def replayed(self, rows: int) -> None:
        """A socket's fetch of stored notifications (replay, gap fill, resync) read ``rows``."""

    def slow_closed(self) -> None:
        """A socket was closed as a slow consumer (1008)."""

    def dependency_error(self, dependency: str) -> None:
        """A call failed because ``dependency`` ("postgres", "redis") is unavailable."""

    def published(self, seconds: float, recipients: int) -> None:
        """A publish to ``recipients`` users was answered after ``seconds``."""

    def pushed(self, provider: str, outcome: str, seconds: float) -> None:
        """A push provider answered one send with ``outcome`` after ``seconds``."""

    def known_providers(self, names: Iterable[str]) -> None:
        """The push providers configured (their counters start at zero)."""


class Metrics(Recorder):
    def __init__(self, *, backlog_ttl: float = BACKLOG_TTL):
        self.registry = CollectorRegistry()
        self.deliveries = dict.fromkeys(DELIVERY_KINDS, 0)
        self.replays = 0
        self.replay_rows = 0
        self.slow_closes = 0
        self.dependency_errors = dict.fromkeys(DEPENDENCIES, 0)
        self.push_sends: Counter[tuple[str, str]] = Counter()
        self.publish_seconds = Histogram(
            "tidings_publish_duration_seconds",
            "Time to answer each producer publish (stored and routed, scheduled, or live"
            " only); each member of a batch counts", buckets=PUBLISH_SECONDS,
            registry=self.registry)
        self.publish_recipients = Histogram(
            "tidings_publish_recipients", "Recipients of each producer publish answered",
            buckets=RECIPIENTS, registry=self.registry)
        self.push_seconds = Histogram(
            "tidings_push_send_duration_seconds",
            "Time a push provider took to answer one send", ["provider"],
            buckets=PUSH_SECONDS, registry=self.registry)
        self._push_seconds: dict[str, Any] = {}  # provider -> its histogram child
        self._sockets: Callable[[], tuple[int, int]] = lambda: (0, 0)
        self._backlog_ttl = backlog_ttl
        self._backlog_source: Callable[[], Awaitable[Backlog]] | None = None
        self._backlog: Backlog | None = None
        self._backlog_at = -float("inf")
        self._backlog_lock = asyncio.Lock()
        self._report: Callable[[Unavailable], None] = self._count_unavailable
        self.registry.register(_Collector(self))
        ProcessCollector(registry=self.registry)

    # -- what is read when scraped ------------------------------------------------

    def watch_sockets(self, sockets: Callable[[], tuple[int, int]]) -> None:
        """Read (sockets open, users online) from ``sockets`` on every scrape."""
        self._sockets = sockets

    def watch_backlog(self, read: Callable[[], Awaitable[Backlog]],
                      report: Callable[[Unavailable], None] | None = None) -> None:
        """Read the queue gauges with ``read`` (:func:`tidings.store.backlog.read` on the
        node's pool); an outage goes to ``report`` (the node's health, which counts it),
        else it is counted here."""
        self._backlog_source = read
        if report is not None:
            self._report = report

    def known_providers(self, names: Iterable[str]) -> None:
        # at zero from the start, so that rate() sees the first send of each
        for name in names:
            for outcome in OUTCOMES:
                self.push_sends[name, outcome] += 0
            self.push_seconds.labels(name)

    async def exposition(self) -> bytes:
        """The metrics in the Prometheus text format (:data:`CONTENT_TYPE`)."""
        await self._refresh_backlog()
        return generate_latest(self.registry)

    async def _refresh_backlog(self) -> None:
        if self._backlog_source is None or self._fresh():
            return
        async with self._backlog_lock:  # concurrent scrapes share one read
            if self._fresh():
                return
            try:
                self._backlog = await self._backlog_source()
            except StoreUnavailable as exc:
                self._backlog = None
                self._report(exc)
            except StoreError as exc:
                self._backlog = None
                log.warning("the queue gauges could not be read: %s", exc)
            self._backlog_at = time.monotonic()

    def _fresh(self) -> bool:
        return time.monotonic() - self._backlog_at < self._backlog_ttl

    def _count_unavailable(self, exc: Unavailable) -> None:
        self.dependency_error(exc.dependency)

    # -- the hooks ------------------------------------------------------------

    def delivered(self, event: dict[str, Any], sockets: int) -> None:
        self.deliveries[delivery_kind(event)] += sockets

    def replayed(self, rows: int) -> None:
        self.replays += 1
        self.replay_rows += rows

    def slow_closed(self) -> None:
        self.slow_closes += 1

    def dependency_error(self, dependency: str) -> None:
        self.dependency_errors[dependency] = self.dependency_errors.get(dependency, 0) + 1

    def published(self, seconds: float, recipients: int) -> None:
        self.publish_seconds.observe(seconds)
        self.publish_recipients.observe(recipients)

    def pushed(self, provider: str, outcome: str, seconds: float) -> None:
        self.push_sends[provider, outcome] += 1
        child = self._push_seconds.get(provider)
        if child is None:  # labels() takes a lock and builds a key: once per provider
            child = self._push_seconds[provider] = self.push_seconds.labels(provider)
        child.observe(seconds)


class _Collector:
    """The samples computed when scraped: counters kept as integers, gauges read now."""

    def __init__(self, metrics: Metrics):
        self._m = metrics

    def collect(self) -> Iterator[Metric]:
        m = self._m
        sockets, users = m._sockets()
        yield GaugeMetricFamily("tidings_sockets_open",
                                "WebSockets open on this node (authenticated)", value=sockets)
        yield GaugeMetricFamily("tidings_users_online",
                                "Users with at least one socket on this node", value=users)
        yield _counter("tidings_deliveries_total",
                       "Live events handed to this node's sockets, one per socket: stored"
                       " notifications, live-only notifications, counts updates",
                       "kind", m.deliveries)
        yield CounterMetricFamily(
            "tidings_replays_total", "Reads of stored notifications for a socket: replays on"
            " connect, gap fills, resyncs after Redis lost events", value=m.replays)
        yield CounterMetricFamily("tidings_replay_rows_total",
                                  "Stored notifications those reads returned",
                                  value=m.replay_rows)
        yield CounterMetricFamily(
            "tidings_slow_consumer_closes_total",
            "Sockets closed with 1008 because they did not take what was sent",
            value=m.slow_closes)
        sends = CounterMetricFamily("tidings_push_sends_total",
                                    "Push sends answered, by provider and outcome",
                                    labels=["provider", "outcome"])
        for (provider, outcome), n in sorted(m.push_sends.items()):
            sends.add_metric([provider, outcome], n)
        yield sends
        yield _counter("tidings_dependency_errors_total",
                       "Calls that failed because PostgreSQL or Redis was unavailable",
                       "dependency", m.dependency_errors)
        found = m._backlog
        if found is not None:
            yield GaugeMetricFamily(
                "tidings_push_queue_depth", "Push jobs due now, waiting for a worker or being"
                " sent (the cluster's: every node reads the same table)", value=found.push_due)
            yield GaugeMetricFamily(
                "tidings_push_queue_lag_seconds", "How long the oldest due push job no worker"
                " holds has waited past its due time", value=found.push_lag)
            yield GaugeMetricFamily(
                "tidings_outbox_backlog", "Publishes committed whose routing and push hand-off"
                " are not done yet (the outbox relay finishes them)", value=found.outbox)


def _counter(name: str, help: str, label: str, values: dict[str, int]) -> CounterMetricFamily:
    family = CounterMetricFamily(name, help, labels=[label])
    for value, n in values.items():
        family.add_metric([value], n)
    return family
