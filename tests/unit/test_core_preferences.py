"""Property tests of the pure rules of types, preferences and the send-time decision."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from zoneinfo import ZoneInfo

import msgspec
import pytest
from hypothesis import given
from hypothesis import strategies as st

from tidings.core import channel_policy as policy
from tidings.core.errors import NotFound, ValidationError
from tidings.core.preferences import (
    Choices,
    PreferencesPatch,
    QuietHours,
    TypeChoice,
    apply_patch,
    channel_on,
    effective,
    in_quiet_hours,
    subscribes,
)
from tidings.core.requests import PushOptions
from tidings.core.typedefs import CHANNELS, Digest, TypeDefinition, merged_push
from tidings.workers.push_policy import local_minute, resume_at

NAMES = st.sampled_from(["comment", "alert", "digest", "quiet"])
channel_maps = st.dictionaries(st.sampled_from(CHANNELS), st.booleans())
hhmm = st.builds(lambda h, m: f"{h:02d}:{m:02d}", st.integers(0, 23), st.integers(0, 59))
quiet = st.none() | st.builds(QuietHours, hhmm, hhmm)


types_maps = st.dictionaries(NAMES, st.builds(
    TypeDefinition, title=st.text(min_size=1, max_size=5), channels=channel_maps,
    required=st.booleans(), digest=st.none() | st.builds(Digest, st.integers(1, 3600))))


choices_st = st.builds(Choices, channels=channel_maps,
                       types=st.dictionaries(NAMES, st.builds(TypeChoice, channel_maps)),
                       quiet_hours=quiet)


@given(types_maps, choices_st, st.sampled_from(CHANNELS), NAMES, st.integers(0, 1439),
       st.booleans())
def test_the_decision_follows_its_rules_in_order(types, choices, channel, name, minute, due):
    d = policy.decide(channel, name, types, choices, minute, digest_due=due)
    t = types.get(name)
    if t is None:
        assert d == policy.SEND  # an undeclared type is sent as before
        return
    on = channel_on(types, name, choices, channel)
    if channel not in t.channels:
        assert d == policy.Skip("type")
    elif not on:
        assert d == policy.Skip("preference")
        assert not (t.required and t.channels[channel])  # required defaults stay on
    elif t.digest is not None and not due:
        assert d == policy.Digest(t.digest.window)
    elif choices.quiet_hours and not t.required and in_quiet_hours(choices.quiet_hours, minute):
        assert d == policy.Defer(choices.quiet_hours.end_minute)
    else:
        assert d == policy.SEND


@given(types_maps, choices_st, st.sampled_from(CHANNELS), NAMES)
def test_a_channel_is_on_only_if_the_type_offers_it_and_nothing_turned_it_off(
        types, choices, channel, name):
    if name not in types:
        return
    t = types[name]
    on = channel_on(types, name, choices, channel)
    if channel not in t.channels:
        assert not on
    elif t.required and t.channels[channel]:
        assert on
    else:
        own = choices.types.get(name)
        chosen = own.channels.get(channel) if own else None
        assert on == (choices.channels.get(channel, True)
                      and (t.channels[channel] if chosen is None else chosen))


@given(types_maps, choices_st, NAMES)
def test_a_user_subscribes_unless_every_channel_of_the_type_is_off(types, choices, name):
    t = types.get(name)
    if t is None:
        return
    on = [c for c in t.channels if channel_on(types, name, choices, c)]
    assert subscribes(types, name, choices) == (bool(on) or not t.channels)
    if t.required and any(t.channels.values()):
        assert subscribes(types, name, choices), "nobody leaves a required type"
    assert subscribes(types, name, Choices()) == (any(t.channels.values()) or not t.channels)


@given(st.builds(QuietHours, hhmm, hhmm), st.integers(0, 1439))
def test_quiet_hours_include_the_start_and_not_the_end(q, minute):
    s, e = q.start_minute, q.end_minute
    inside = in_quiet_hours(q, minute)
    if s == e:
        assert not inside
    elif s < e:
        assert inside == (s <= minute < e)
    else:  # over midnight
        assert inside == (minute >= s or minute < e)
    assert in_quiet_hours(q, s) == (s != e)
    assert not in_quiet_hours(q, e)


patches = st.builds(
    PreferencesPatch,
    channels=st.just(msgspec.UNSET) | channel_maps,
    types=st.just(msgspec.UNSET) | st.dictionaries(NAMES, st.builds(TypeChoice, channel_maps)),
    quiet_hours=st.just(msgspec.UNSET) | quiet)


@given(types_maps, choices_st, patches)
def test_a_patch_changes_what_it_names_or_is_refused_whole(types, choices, patch):
    try:
        after = apply_patch(types, choices, patch)
    except NotFound:
        assert isinstance(patch.types, dict) and set(patch.types) - set(types)
        return
    except ValidationError as exc:
        assert isinstance(patch.types, dict)
        assert exc.code in ("required_type", "invalid_preferences")
        refused = [(n, c) for n, ch in patch.types.items() for c, on in ch.channels.items()
                   if (n in types and c not in types[n].channels)
                   or (n in types and types[n].required and types[n].channels.get(c)
                       and not on)]
        assert refused
        return
    for c in CHANNELS:
        if isinstance(patch.channels, dict) and c in patch.channels:
            assert after.channels[c] == patch.channels[c]
        else:
            assert after.channels.get(c) == choices.channels.get(c)
    for name in set(types) | set(choices.types):
        for c in CHANNELS:
            named = isinstance(patch.types, dict) and c in (
                patch.types[name].channels if name in patch.types else {})
            before = choices.types[name].channels.get(c) if name in choices.types else None
            now = after.types[name].channels.get(c) if name in after.types else None
            assert now == (patch.types[name].channels[c] if named else before)
    if isinstance(patch.quiet_hours, msgspec.UnsetType):
        assert after.quiet_hours == choices.quiet_hours
    else:
        assert after.quiet_hours == patch.quiet_hours
    # The effective document says what the decision will use.
    doc = effective(types, after)
    for name, t in types.items():
        assert doc["types"][name]["channels"] == {
            c: channel_on(types, name, after, c) for c in t.channels}
    assert msgspec.convert(msgspec.to_builtins(after), Choices) == after  # stored as is


@given(st.dictionaries(st.sampled_from(["badge", "sound", "ttl"]), st.integers(0, 9)),
       st.dictionaries(st.sampled_from(["badge", "sound", "ttl"]), st.integers(0, 9)),
       st.booleans())
def test_a_publishs_push_fields_win_over_the_types(base, own, push_on):
    conv = {"badge": int, "sound": str, "ttl": int}
    base = {k: conv[k](v) for k, v in base.items()}
    own = {k: conv[k](v) for k, v in own.items()}
    t = TypeDefinition(title="T", channels={"push": True} if push_on else {"email": True},
                       push=msgspec.convert({"when": "always", **base}, PushOptions))
    merged = merged_push(t, msgspec.convert(own, PushOptions) if own else None)
    if not push_on:
        assert merged == {"when": "never"}
    else:
        assert merged == {"when": "always", **base, **own}


zones = st.sampled_from(["UTC", "Asia/Tokyo", "Europe/Paris", "America/New_York",
                         "Australia/Lord_Howe", "Asia/Kathmandu"])


@given(st.integers(1_600_000_000, 1_900_000_000), zones, st.integers(0, 1439))
def test_a_deferred_send_resumes_at_the_next_wall_clock_minute(now, zone, minute):
    tz = ZoneInfo(zone)
    at = resume_at(now, tz, minute)
    assert now < at <= now + 26 * 3600
    local = datetime.fromtimestamp(at, tz)
    if local.hour * 60 + local.minute != minute:  # only on a day the clock skipped it
        skipped = datetime.fromtimestamp(at - 1, tz)
        assert (local.utcoffset() or timedelta()) != (skipped.utcoffset() or timedelta())
    else:
        assert local.second == 0 and local_minute(at, tz) == minute
        # no earlier whole minute after now reads the same on the wall clock
        first = (now // 60 + 1) * 60
        assert all(local_minute(t, tz) != minute for t in range(first, int(at), 60))


def test_the_decision_of_the_issue_example():
    comment = TypeDefinition(title="Comments", channels={"push": True, "email": False})
    types = {"comment": comment}
    none = Choices()
    assert policy.decide("push", "comment", types, none, 0) == policy.SEND
    assert policy.decide("email", "comment", types, none, 0) == policy.Skip("preference")
    assert policy.decide("web_push", "comment", types, none, 0) == policy.Skip("type")
    assert policy.decide("push", "other", types, none, 0) == policy.SEND
    night = Choices(quiet_hours=QuietHours("22:00", "07:00"))
    assert policy.decide("push", "comment", types, night, 23 * 60) == policy.Defer(7 * 60)
    assert datetime.fromtimestamp(resume_at(0, UTC, 7 * 60), UTC).hour == 7


@pytest.mark.parametrize("hhmm_text", ["24:00", "7:00", "07:60", "07-00"])
def test_quiet_hours_are_hh_mm(hhmm_text):
    with pytest.raises(msgspec.ValidationError):
        msgspec.convert({"start": hhmm_text, "end": "07:00"}, QuietHours)
