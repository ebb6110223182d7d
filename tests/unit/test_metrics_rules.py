"""The metrics module without a node: delivery kinds, the cached queue gauges, the admin key
check, and the Grafana dashboard against the names the module exports."""

from __future__ import annotations

import asyncio
import hmac
import json
import logging
import re
from pathlib import Path

import pytest
from hypothesis import given
from hypothesis import strategies as st
from prometheus_client.parser import text_string_to_metric_families

from tidings.api import admin_auth
from tidings.core import events
from tidings.core.errors import (
    AuthError,
    NotFound,
    StoreError,
    StoreUnavailable,
    TidingsError,
    Unavailable,
)
from tidings.core.replies import Counts
from tidings.services.metrics import DELIVERY_KINDS, Metrics, delivery_kind
from tidings.store.backlog import Backlog

DASHBOARD = Path(__file__).parents[2] / "docs" / "grafana-dashboard.json"
users = st.text(min_size=1, max_size=8)


@given(st.lists(users, min_size=1, max_size=5), st.booleans())
def test_a_notification_is_stored_or_live_by_its_seqs(recipients, stored):
    rows = [[u, i, f"uid-{i}", i, i, i, i] if stored
            else [u, None, f"uid-{i}", None, None, None, None]
            for i, u in enumerate(recipients, 1)]
    event = events.notification_event({"message": "m"}, rows, None)
    assert delivery_kind(event) == ("notification" if stored else "live")
    assert delivery_kind(events.decode(events.encode(event))) == delivery_kind(event)


@given(users, st.integers(0, 10), st.integers(0, 10))
def test_a_counts_event_is_counts(user, total, version):
    assert delivery_kind(events.counts_event(user, Counts(total, total, version))) == "counts"


def samples(text: bytes) -> dict[str, float]:
    return {s.name + str(sorted(s.labels.items())): s.value
            for f in text_string_to_metric_families(text.decode()) for s in f.samples}


class Reads:
    """A backlog read that counts its calls and answers what it is told."""

    def __init__(self, answer: Backlog | Exception):
        self.answer = answer
        self.calls = 0
        self.gate = asyncio.Event()
        self.gate.set()

    async def __call__(self) -> Backlog:
        self.calls += 1
        await self.gate.wait()
        if isinstance(self.answer, Exception):
            raise self.answer
        return self.answer


async def test_scrapes_share_one_read_of_the_queue_gauges():
    m = Metrics(backlog_ttl=60)
    read = Reads(Backlog(7, 2.5, 3))
    m.watch_backlog(read)
    read.gate.clear()
    scrapes = [asyncio.ensure_future(m.exposition()) for _ in range(10)]
    await asyncio.sleep(0)
    read.gate.set()
    for text in await asyncio.gather(*scrapes):
        got = samples(text)
        assert got["tidings_push_queue_depth[]"] == 7
        assert got["tidings_push_queue_lag_seconds[]"] == 2.5
        assert got["tidings_outbox_backlog[]"] == 3
    await m.exposition()
    assert read.calls == 1, "one read for concurrent scrapes, none while it is fresh"


async def test_the_queue_gauges_are_read_again_once_stale():
    m = Metrics(backlog_ttl=0)
    read = Reads(Backlog(1, 0.0, 0))
    m.watch_backlog(read)
    await m.exposition()
    read.answer = Backlog(4, 0.0, 0)
    assert samples(await m.exposition())["tidings_push_queue_depth[]"] == 4
    assert read.calls == 2


async def test_an_outage_hides_the_queue_gauges_and_is_reported_once_per_read(caplog):
    m = Metrics(backlog_ttl=60)
    read = Reads(StoreUnavailable("PostgreSQL is unavailable (OSError)"))
    reported: list[Unavailable] = []
    m.watch_backlog(read, reported.append)
    for _ in range(3):
        got = samples(await m.exposition())
        assert "tidings_push_queue_depth[]" not in got and "tidings_outbox_backlog[]" not in got
        assert got["tidings_sockets_open[]"] == 0, "the rest of the scrape is there"
    assert read.calls == 1 and [e.dependency for e in reported] == ["postgres"]

    alone = Metrics(backlog_ttl=60)  # no health to report to: counted here
    alone.watch_backlog(Reads(StoreUnavailable("down")))
    got = samples(await alone.exposition())
    assert got["tidings_dependency_errors_total[('dependency', 'postgres')]"] == 1

    refused = Metrics(backlog_ttl=60)
    refused.watch_backlog(Reads(StoreError("relation does not exist", "UndefinedTable")))
    with caplog.at_level(logging.WARNING, logger="tidings"):
        got = samples(await refused.exposition())
    assert "tidings_push_queue_depth[]" not in got
    assert "the queue gauges could not be read" in caplog.text


async def test_counters_start_at_zero_for_every_known_label():
    m = Metrics()
    m.known_providers(["apns", "fcm"])
    got = samples(await m.exposition())
    for kind in DELIVERY_KINDS:
        assert got[f"tidings_deliveries_total[('kind', '{kind}')]"] == 0
    for dep in ("postgres", "redis"):
        assert got[f"tidings_dependency_errors_total[('dependency', '{dep}')]"] == 0
    for provider in ("apns", "fcm"):
        for outcome in ("delivered", "invalid_token", "retry", "failed"):
            key = f"tidings_push_sends_total[('outcome', '{outcome}'), ('provider', '{provider}')]"
            assert got[key] == 0
    m.pushed("apns", "delivered", 0.01)
    assert samples(await m.exposition())[
        "tidings_push_sends_total[('outcome', 'delivered'), ('provider', 'apns')]"] == 1


def test_the_admin_key_is_compared_with_every_key_in_constant_time(monkeypatch):
    compared: list[tuple[bytes, bytes]] = []
    real = hmac.compare_digest

    def spy(a: bytes, b: bytes) -> bool:
        compared.append((a, b))
        return real(a, b)

    monkeypatch.setattr(admin_auth.hmac, "compare_digest", spy)
    keys = ("first-admin-key-0", "second-admin-key-0", "third-admin-key-0")
    admin_auth.check_admin_key("first-admin-key-0", keys)
    assert [b for _, b in compared] == [k.encode() for k in keys], "no early exit on a match"
    compared.clear()
    with pytest.raises(TidingsError) as exc:
        admin_auth.check_admin_key("first-admin-key-x", keys)
    assert (exc.value.code, exc.value.status) == ("invalid_admin_key", 403)
    assert len(compared) == 3
    with pytest.raises(AuthError) as exc:
        admin_auth.check_admin_key(None, keys)
    assert exc.value.code == "unauthorized"
    with pytest.raises(NotFound) as exc:
        admin_auth.check_admin_key("anything", ())
    assert "TIDINGS_ADMIN_KEYS" in exc.value.message


async def exported_names() -> set[str]:
    """Every series name a scrape holds (counters with _total, histograms' _bucket, ...)."""
    m = Metrics()
    m.watch_backlog(Reads(Backlog(0, 0.0, 0)))
    m.known_providers(["apns"])
    return {s.name for family in text_string_to_metric_families((await m.exposition()).decode())
            for s in family.samples}


def dashboard_exprs(dashboard: dict) -> list[str]:
    found = []
    for panel in dashboard["panels"]:
        for inner in [panel, *panel.get("panels", [])]:
            found.extend(t["expr"] for t in inner.get("targets", []))
    return found


async def test_the_dashboard_names_only_metrics_that_exist():
    dashboard = json.loads(DASHBOARD.read_text())
    assert dashboard["title"] and dashboard["uid"] and dashboard["schemaVersion"] >= 36
    exprs = dashboard_exprs(dashboard)
    assert exprs, "no query"
    names = await exported_names()
    used = set()
    for expr in exprs:
        # every metric-looking name: ours (tidings_*) and the process collector's (process_*)
        mentioned = set(re.findall(r"\b(?:tidings|process)_[a-z0-9_]+\b", expr))
        assert mentioned, f"{expr!r} names no metric"
        assert mentioned <= names, f"{expr!r} names {sorted(mentioned - names)}"
        used |= mentioned
    ours = {n for n in names if n.startswith("tidings_")}
    bases = {re.sub(r"_(bucket|sum|count)$", "", n) for n in used}
    missing = {n for n in ours if re.sub(r"_(bucket|sum|count)$", "", n) not in bases}
    assert not missing, f"metrics with no panel: {sorted(missing)}"
    for panel in dashboard["panels"]:
        assert panel.get("title") and panel.get("gridPos"), panel


def test_a_preferences_event_is_a_delivery_of_its_own_kind():
    assert delivery_kind(events.preferences_event("u1", {"channels": {}})) == "preferences"
