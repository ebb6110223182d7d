"""Bus events and socket message shapes: pure, no event loop."""

import tracemalloc
from datetime import UTC, datetime

import orjson
import pytest
from hypothesis import given
from hypothesis import strategies as st

from tidings.core import events
from tidings.core.replies import CONTENT_FIELDS, Counts, inbox_page, notification_dict

from helpers import event_part, event_users

NOW = datetime(2026, 1, 2, 3, 4, 5, tzinfo=UTC)
CONTENT = {"message": "hi", "type": "comment", "title": "T", "data": {"k": 1},
           "created_by": "svc", "model": None, "instance": None, "method": None,
           "changed_data": None, "custom_info": None, "created_at": NOW, "updated_at": NOW}


def _event():
    return events.notification_event(CONTENT, [
        ["alice", 10, "u-a", 3, 3, 2, 7],
        ["bob", 11, "u-b", 1, 1, 1, 1],
    ], {"when": "offline"})


def test_round_trip_and_split_per_node():
    event = events.decode(events.encode(_event()))
    assert event_users(event) == ["alice", "bob"]
    only_bob = event_part(event, {"bob"})
    assert only_bob is not None and event_users(only_bob) == ["bob"]
    assert only_bob["n"] == event["n"]
    assert event_part(event, {"carol"}) is None
    assert event_part(event, {"alice", "bob"}) is event


def test_deliveries_have_contract_shape():
    alice, bob = events.deliveries(events.decode(events.encode(_event())))
    assert (alice.user_id, alice.seq, alice.version, alice.uid) == ("alice", 3, 7, "u-a")
    msg = orjson.loads(alice.frame)
    assert msg["type"] == "notification"
    assert (msg["total_notifications"], msg["read_notifications"],
            msg["unread_notifications"]) == (3, 1, 2)
    n = msg["notification"]
    assert set(n) == {"id", "uid", "seq", "user", "notification", "type", "title", "data",
                      "is_read", "custom_info", "created_by", "status", "created_at",
                      "updated_at"}
    assert n["user"] == {"id": "alice"} and n["uid"] == "u-a" and n["is_read"] is False
    assert n["notification"]["message"] == "hi" and n["status"] == "ACTIVE"
    assert orjson.loads(bob.frame)["notification"]["seq"] == 1


def test_deliveries_for_some_users_are_those_of_their_part():
    """``only``: the deliveries of the event's part for those users, no other frame built."""
    event = events.decode(events.encode(_event()))
    for only in ({"bob"}, {"alice", "bob"}, {"carol"}, {"bob": (), "carol": ()}):
        part = event_part(event, set(only))
        assert list(events.deliveries(event, only)) == (
            [] if part is None else list(events.deliveries(part)))
    counts = events.counts_event("bob", Counts(1, 0, 2))
    assert list(events.deliveries(counts, {"alice"})) == []
    assert list(events.deliveries(counts, {"bob"})) == list(events.deliveries(counts))
    prefs = events.preferences_event("bob", {"x": 1})
    assert list(events.deliveries(prefs, {"alice"})) == []
    assert [d.user_id for d in events.deliveries(prefs, {"bob"})] == ["bob"]


def test_spliced_frame_equals_the_contract_dict():
    """The frame built from the shared part and per-recipient fields is the full message."""
    event = events.decode(events.encode(_event()))
    for delivery, (user, nid, uid, seq, total, unread, version) in zip(
            events.deliveries(event), event["r"], strict=True):
        row = {**dict.fromkeys(CONTENT_FIELDS), **event["n"], "id": nid, "uid": uid,
               "seq": seq, "user_id": user, "status": "ACTIVE", "read_at": None}
        expected = {"type": "notification", "notification": notification_dict(row),
                    **Counts(total, unread, version).as_dict()}
        assert orjson.loads(delivery.frame) == orjson.loads(orjson.dumps(expected))


def test_frames_escape_user_ids_and_text():
    tricky = 'quote" back\\slash \u2028 ünï'
    event = events.notification_event(
        {**CONTENT, "message": tricky}, [[tricky, 1, "u", 1, 1, 1, 1]],
        None)
    (d,) = events.deliveries(event)
    msg = orjson.loads(d.frame)
    assert msg["notification"]["user"]["id"] == tricky
    assert msg["notification"]["notification"]["message"] == tricky


def test_live_only_delivery_has_no_counts():
    event = events.notification_event(
        CONTENT, [["a", None, "u", None, None, None, None]], None)
    (d,) = events.deliveries(event)
    assert d.seq is None and d.counts is None
    assert "total_notifications" not in orjson.loads(d.frame)


def test_counts_event():
    event = events.counts_event("alice", Counts(5, 2, 9))
    (d,) = events.deliveries(events.decode(events.encode(event)))
    assert orjson.loads(d.frame) == {"type": "counts", "total_notifications": 5,
                                     "read_notifications": 3, "unread_notifications": 2}
    assert d.version == 9 and d.seq is None and d.kind == events.COUNTS
    assert event_part(event, {"bob"}) is None


def test_decode_rejects_foreign_data():
    with pytest.raises(ValueError):
        events.decode(b'{"k": "x"}')


def test_inbox_page_envelope():
    row = {"id": 1, "uid": "u", "seq": 1, "user_id": "a", "status": "ACTIVE",
           "read_at": NOW, **CONTENT}
    page = inbox_page(Counts(4, 1), [row], page=1)
    assert page["total_notifications"] == 4 and page["read_notifications"] == 3
    assert page["notifications"] == [notification_dict(row)]
    assert page["notifications"][0]["is_read"] is True and page["page"] == 1


_USERS = st.sampled_from(["a", "b", "c", 'q"uote', "ü"])


@given(rows=st.lists(_USERS, min_size=1, max_size=6, unique=True),
       held=st.sets(_USERS), counts=st.booleans())
def test_parts_concatenate_to_each_users_part(rows, held, counts):
    """head + the held rows + tail decodes to the event's part for any users held."""
    if counts:
        event = events.counts_event(rows[0], Counts(3, 2, 7))
    else:
        event = events.notification_event(
            {"message": "m", "data": {"k": [1, "x"]}},
            [[u, i, f"uid-{i}", i, i, i, i] for i, u in enumerate(rows)],
            {"when": "offline"})
    parts = events.encode_parts(event)
    assert parts.users == event_users(event)
    rows = parts.rows.split(b"\n")
    assert len(rows) == len(parts.users), "a newline between rows, none inside"
    chosen = [row for u, row in zip(parts.users, rows, strict=True) if u in held]
    expected = event_part(event, held)
    if expected is None:
        assert not chosen
    else:
        assert events.decode(parts.head + b",".join(chosen) + parts.tail) == expected


def test_parts_of_a_large_publish_hold_only_their_bytes():
    """A 10,000-recipient publish's parts are a few hundred KiB, not a buffer per row."""
    event = events.notification_event(
        {"message": "m"},
        [[f"user-{i}", i, f"uid-{i:032d}", i, i, i, i]
         for i in range(10_000)], None)
    tracemalloc.start()
    try:
        parts = events.encode_parts(event)
        held, _peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert len(parts.users) == 10_000 and parts.rows.count(b"\n") == 9_999
    assert held < 3 * 1024 * 1024, f"{held / 2**20:.1f} MiB held by the parts"


_TEXT = st.text(st.characters(blacklist_categories=("Cs",)), max_size=8)
_JSON = st.recursive(st.none() | st.booleans() | st.integers(-2**63, 2**63 - 1) | _TEXT,
                     lambda inner: st.lists(inner, max_size=3)
                     | st.dictionaries(_TEXT, inner, max_size=3), max_leaves=6)


@given(message=_TEXT, optional=st.fixed_dictionaries({
           f: st.none() | _TEXT for f in ("type", "title", "created_by", "model", "instance",
                                          "method")}),
       free=st.fixed_dictionaries({f: st.none() | _JSON
                                   for f in ("data", "changed_data", "custom_info")}),
       rows=st.lists(st.tuples(_TEXT.filter(bool), st.booleans()), min_size=1, max_size=4,
                     unique_by=lambda r: r[0]))
def test_every_frame_is_the_contract_dict_of_its_row(message, optional, free, rows):
    """Frames spliced from the shared part (built once per event) and each recipient's
    fields equal notification_dict of the row, for any content, stored or live-only."""
    content = {"message": message, **optional, **free, "created_at": NOW, "updated_at": NOW}
    event = events.decode(events.encode(events.notification_event(content, [
        [user, i, f"uid-{i}", i, i + 2, i, i + 5] if stored
        else [user, None, f"uid-{i}", None, None, None, None]
        for i, (user, stored) in enumerate(rows)], None)))
    for delivery, (user, nid, uid, seq, total, unread, version) in zip(
            events.deliveries(event), event["r"], strict=True):
        row = {**dict.fromkeys(CONTENT_FIELDS), **content, "id": nid, "uid": uid, "seq": seq,
               "user_id": user, "status": "ACTIVE", "read_at": None}
        expected = {"type": "notification", "notification": notification_dict(row)}
        if total is not None:
            expected |= Counts(total, unread, version).as_dict()
        assert delivery.frame == orjson.dumps(expected), "the same bytes, in the same order"
