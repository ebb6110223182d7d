"""The push hand-off plan: each stored recipient gets what core.push.decide says, once."""

from __future__ import annotations

from hypothesis import given
from hypothesis import strategies as st

from tidings.core.push import Decision, decide
from tidings.core.requests import PushOptions
from tidings.services.handoff import emails, owed
from tidings.store.publish import NOT_STORED, Draft, Published, Row


def _published(content: dict, push: dict | None, rows: list[tuple[int, bool]]) -> Published:
    """A publish to user ``u<n>`` per row, stored (id ``n``) or not (live-only)."""
    draft = Draft([f"u{n}" for n, _ in rows], [f"uid{n}" for n, _ in rows], content, push)
    return Published(draft, [Row(n, n, 1, 1, 1) if stored else NOT_STORED
                             for n, stored in rows])


WHENS = st.sampled_from([None, "offline", "always", "never", "unread_after"])


@given(st.lists(st.tuples(st.integers(0, 30), st.booleans(), st.booleans()),
                unique_by=lambda r: r[0], max_size=12),
       WHENS, st.none() | st.floats(0, 3600), st.none() | st.integers(0, 99))
def test_each_stored_recipient_gets_what_the_policy_decides(rows, when, after, badge):
    push = {k: v for k, v in {"when": when, "after": after, "badge": badge}.items()
            if v is not None}
    publish = _published({"message": "m"}, push or None, [(n, stored) for n, stored, _ in rows])
    online = {f"u{n}" for n, _, is_online in rows if is_online}
    plan = owed(publish, online)
    options = PushOptions(**push)
    expected = {n: decide(options, f"u{n}" in online) for n, stored, _ in rows if stored}
    got = {nid: job for job in plan for nid in job.notification_ids}
    assert sum(len(job.notification_ids) for job in plan) == len(got), "one job each"
    assert set(got) == {n for n, d in expected.items() if d is not Decision.NEVER}
    for nid, job in got.items():
        later = expected[nid] is Decision.LATER
        assert job.check_unread == later
        assert job.delay == ((options.after or 0.0) if later else 0.0)
        assert job.options == (push or {})
    assert all(job.notification_ids for job in plan), "no empty job groups"


@given(st.lists(st.tuples(st.integers(0, 30), st.booleans()), unique_by=lambda r: r[0],
                max_size=12),
       st.sampled_from([None, "mailed", "silent"]), st.sampled_from([None, "never", "always"]))
def test_a_type_using_email_owes_one_email_job_per_stored_recipient(rows, kind, when):
    push = {"when": when} if when else None
    publish = _published({"message": "m", "type": kind}, push, rows)
    plan = emails(publish, lambda t: t == "mailed")
    stored = [n for n, is_stored in rows if is_stored]
    if kind != "mailed" or not stored:
        assert plan == []
        return
    [job] = plan
    assert job.channel == "email" and list(job.notification_ids) == stored
    assert not job.check_unread and job.delay == 0.0 and job.options == (push or {})
