"""The console's pure push-app rules: no secret survives masking; every outcome is counted
once, for the app the registry would send through."""

from __future__ import annotations

import json

from hypothesis import given
from hypothesis import strategies as st

from tidings.core.push import Device
from tidings.core.push_apps import MASK, AppRef, app_of, attribute, masked
from tidings.push.registry import Registry

SECRET = "SECRET-"  # every generated secret value starts with this; nothing else contains it
secrets = st.text(min_size=1, max_size=20).map(lambda t: SECRET + t)
plain = st.one_of(st.none(), st.booleans(), st.integers(), st.text(max_size=20).filter(
    lambda t: SECRET not in t))
secret_names = st.sampled_from(["key", "private_key", "private_key_id", "client_secret",
                                "password", "api_secret", "privateThing", "token", "auth"])
plain_names = st.sampled_from(["platform", "kind", "topic", "key_id", "team_id", "host",
                               "port", "key_file", "cert_file", "app_id", "default"])


@st.composite
def entries(draw):
    entry = draw(st.dictionaries(plain_names, plain, max_size=6))
    entry.update(draw(st.dictionaries(secret_names, secrets, max_size=4)))
    if draw(st.booleans()):
        account = {"project_id": draw(plain.filter(lambda v: isinstance(v, str))),
                   "client_email": "push@example.iam"}
        account.update(draw(st.dictionaries(st.text(max_size=8).filter(
            lambda k: k not in ("project_id", "client_email", "client_id", "token_uri", "type")),
            secrets, min_size=1, max_size=3)))
        entry["service_account"] = account
    if draw(st.booleans()):
        entry["nested"] = {"password": draw(secrets), "list": [draw(secrets)]}
    return entry


@given(entries())
def test_masking_leaves_no_secret(entry):
    out = masked(entry)
    assert SECRET not in json.dumps(out, default=str)
    for name, value in entry.items():
        if name in ("platform", "kind", "topic", "key_id", "host", "port", "cert_file"):
            assert out[name] == value
    if "service_account" in entry:
        assert out["service_account"]["client_email"] == "push@example.iam"
        assert out["service_account"]["private_key"] == MASK


def test_masking_a_real_looking_app():
    app = {"platform": "apns", "kind": "apns", "topic": "com.example", "key": "-----BEGIN…",
           "key_id": "K", "team_id": "T"}
    assert masked(app) == {**app, "key": MASK}


platforms = st.sampled_from(["apns", "fcm"])
app_ids = st.one_of(st.none(), st.sampled_from(["a", "b", "c"]))
apps_lists = st.lists(st.builds(AppRef, platforms, app_ids, st.booleans()), max_size=5)
rows = st.lists(st.tuples(platforms, app_ids, st.sampled_from(
    ["pushed", "failed", "retry", "dead", "deactivated", "throttled"]),
    st.integers(min_value=1, max_value=50)), max_size=20)


@given(apps_lists, rows)
def test_every_outcome_is_counted_once(apps, outcomes):
    tallies, unconfigured = attribute(apps, outcomes)
    total = sum(n for *_, n in outcomes)
    counted = sum(sum(t.outcomes.values()) for t in tallies) + sum(
        unconfigured.outcomes.values())
    assert counted == total
    for t in [*tallies, unconfigured]:
        assert t.sent == t.outcomes.get("pushed", 0)
        assert t.errors == sum(t.outcomes.get(o, 0) for o in ("failed", "retry", "deactivated"))


@given(apps_lists, platforms, app_ids)
def test_the_app_chosen_is_the_registrys(apps, platform, app_id):
    """The same choice as the push registry's for a device, for apps of any order, ids and
    default marks (console apps: the registry builds them without connecting)."""
    registry = Registry.from_config([
        {"platform": a.platform, "kind": "console", "default": a.default,
         **({"app_id": a.app_id} if a.app_id else {})} for a in apps])
    chosen = registry.for_device(Device(1, "u", platform, "t", app_id))
    i = app_of(apps, platform, app_id)
    if chosen is None:
        assert i is None
    else:
        assert i is not None and (apps[i].platform, apps[i].app_id) == (
            chosen.platform, chosen.app_id)
