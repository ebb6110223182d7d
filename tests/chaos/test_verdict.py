"""The verdict's per-socket rule, property-tested (no event loop, no I/O)."""

from __future__ import annotations

import inspect

from hypothesis import given
from hypothesis import strategies as st
from loadtest.chaos.producer import Publish
from loadtest.chaos.push import late_pushes, push_figures
from loadtest.chaos.run import QUIET
from loadtest.chaos.verdict import Figures, failures, first_fault, judge, socket_figures

from tidings.workers.relay import Relay

seqs = st.lists(st.integers(1, 40), max_size=80)


@given(st.integers(0, 40))
def test_a_perfect_socket_has_no_fault(n):
    assert socket_figures(range(1, n + 1), range(1, n + 1)) == (n, 0, 0, 0)


@given(seqs, st.sets(st.integers(1, 40)))
def test_figures_add_up(received, expected):
    delivered, duplicates, out_of_order, lost = socket_figures(received, expected)
    assert duplicates == len(received) - len(set(received))
    assert delivered + lost == len(expected)
    assert delivered == len(set(received) & expected)
    assert out_of_order <= len(set(received))
    assert (out_of_order == 0) == (sorted(dict.fromkeys(received)) == list(
        dict.fromkeys(received)))


def test_the_issue_example_counts_two_duplicates():
    assert socket_figures([1, 2, 1, 2, 3], [1, 2, 3]) == (3, 2, 0, 0)
    assert socket_figures([1, 3, 2], [1, 2, 3, 4]) == (3, 0, 1, 1)


def test_first_fault_shows_the_arrivals_around_it():
    assert first_fault([1, 2, 3]) is None
    assert first_fault([1, 2, 1, 2, 3]) == "1 2 1 2 3"


def test_push_figures():
    sends = [("a", "t1", "a", 200), ("a", "t1", "a", 200), ("b", "t2", None, 500)]
    got = push_figures({"a", "b", "c"}, sends, bound=0)
    assert (got["pushed"], got["missing"], got["duplicates"], got["duplicates over bound"],
            got["without collapse id"]) == (1, 2, 1, 1, 1)
    assert push_figures({"a"}, sends[:2], bound=1)["duplicates over bound"] == 0


def _judged(received: list[int], stored: dict[int, str], acked: list[tuple[str, int, str]]):
    pub = Publish(1, ["u"], 0.0, 201, acked)
    counts = (len(stored), 0, len(stored))
    return judge([pub], {"u": stored}, {pub.message}, [("u", received, counts)],
                 {"u": counts}, [], None)


def test_a_seq_delivered_but_never_stored_fails_the_run():
    """A socket given a seq that no stored notification has (a phantom) is a fault, even
    when every stored seq also arrived once and in order."""
    f = _judged([1, 2, 3], {1: "a", 2: "b"}, [("u", 1, "a"), ("u", 2, "b")])
    assert (f.delivered, f.duplicates, f.out_of_order, f.lost) == (2, 0, 0, 0)
    assert f.unexpected == 1
    assert any(w.startswith("unexpected") for w in failures(f))


def test_an_acknowledged_uid_that_is_not_the_stored_one_fails_the_run():
    """An answer naming a stored (user, seq) but another uid than the row's is false."""
    f = _judged([1], {1: "a"}, [("u", 1, "not-a")])
    assert f.acked_not_stored == 1
    assert _judged([1], {1: "a"}, [("u", 1, "a")]).acked_not_stored == 0


def test_a_push_sent_later_than_the_takeover_bound_fails_the_run():
    """The contract: a dead worker's jobs are taken over within 15 s. A push first sent more
    than that after it was owed (its publish, or the fault if later) is late."""
    owed_at = {"a": 0.0, "b": 0.0, "c": 30.0}
    first = {"a": 3.0, "b": 16.0, "c": 44.0}  # c: 14 s after it was owed
    assert late_pushes(first, owed_at, fault_end=10.0, bound=15.0) == 0
    assert late_pushes(first, owed_at, fault_end=0.0, bound=15.0) == 1
    f = Figures()
    f.acknowledged = 1
    f.push["slower than takeover bound"] = 1
    assert failures(f) == ["push slower than takeover bound: 1"]


def test_the_quiet_period_outlasts_a_relay_republish():
    """A socket's late duplicate would come from the outbox relay republishing a row, up to
    its grace plus one poll after the last publish: the sockets are judged only after a
    quiet period longer than that, or such a duplicate would arrive unseen."""
    params = inspect.signature(Relay.__init__).parameters
    assert QUIET > params["grace"].default + params["interval"].default


def test_a_2xx_that_leaves_out_a_recipient_fails_the_run():
    """Every recipient of an acknowledged publish must be in its answer (and stored)."""
    pub = Publish(1, ["u", "v"], 0.0, 201, [("u", 1, "a")])
    f = judge([pub], {"u": {1: "a"}}, {pub.message}, [], {}, [], None)
    assert f.acked_not_stored == 1 and f.acknowledged == 1
