"""The socket delivery log's write waits for a lull in a broadcast (pure timing rule)."""

import pytest

from tidings.gateway.delivery_log import HOLD, LULL, DeliveryLog


def test_a_write_goes_ahead_at_once_without_a_broadcast():
    log = DeliveryLog(None)  # type: ignore[arg-type]  # hold() reads no store
    assert log.hold(100.0, 100.0) == 0.0


def test_a_write_waits_for_a_lull_after_a_broadcasts_event():
    log = DeliveryLog(None)  # type: ignore[arg-type]
    log.bulk(100.0)
    assert log.hold(100.0, 100.0) == pytest.approx(LULL)
    assert log.hold(100.0 + LULL / 2, 100.0) == pytest.approx(LULL / 2)
    assert log.hold(100.0 + LULL, 100.0) == 0.0
    log.bulk(100.0 + LULL / 2)  # the broadcast goes on: the lull starts again
    assert log.hold(100.0 + LULL, 100.0) == pytest.approx(LULL / 2)


def test_a_write_waits_hold_seconds_at_most():
    log = DeliveryLog(None)  # type: ignore[arg-type]
    due = 100.0
    log.bulk(due + HOLD - LULL / 2)  # events go on past the bound
    assert log.hold(due + HOLD - LULL / 2, due) == pytest.approx(LULL / 2)
    assert log.hold(due + HOLD, due) == 0.0
