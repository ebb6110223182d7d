"""`tidings vapid` prints a key pair the server takes; bad VAPID settings stop it in one line."""

from __future__ import annotations

import subprocess
import sys
from dataclasses import replace

import pytest

from tidings import config
from tidings.app import webpush_setup
from tidings.core.errors import ConfigError
from tidings.push import vapid


def test_vapid_prints_settings_lines_with_the_matching_public_key(settings):
    out = subprocess.run([sys.executable, "-m", "tidings", "vapid", "--subject",
                          "https://example.com/contact"], capture_output=True, text=True,
                         timeout=60, check=True).stdout
    lines = [line for line in out.splitlines() if not line.startswith("#")]
    values = dict(line.split("=", 1) for line in lines)
    assert values["TIDINGS_VAPID_SUBJECT"] == "https://example.com/contact"
    public = out.splitlines()[-1].removeprefix("# ")
    loaded = config.load({**config.to_env(settings), **values})
    signer = webpush_setup(loaded).vapid
    assert signer is not None and signer.public_key == public
    assert vapid.public_key(vapid.load_key(values["TIDINGS_VAPID_PRIVATE_KEY"])) == public


@pytest.mark.parametrize(("env", "setting", "says"), [
    ({"TIDINGS_VAPID_PRIVATE_KEY": vapid.generate()[0]}, "TIDINGS_VAPID_SUBJECT",
     "needs a subject"),
    ({"TIDINGS_VAPID_SUBJECT": "you@example.com"}, "TIDINGS_VAPID_SUBJECT", "mailto:"),
    ({"TIDINGS_VAPID_PRIVATE_KEY": "@/no/such/file", "TIDINGS_VAPID_SUBJECT": "mailto:a@b.c"},
     "TIDINGS_VAPID_PRIVATE_KEY", "no file"),
    ({"TIDINGS_WEBPUSH_ALLOWED_HOSTS": "fcm.googleapis.com,http://x"},
     "TIDINGS_WEBPUSH_ALLOWED_HOSTS", "not a host name"),
])
def test_bad_settings_are_named(settings, env, setting, says):
    with pytest.raises(ConfigError) as caught:
        config.load({**config.to_env(settings), **env})
    problems = getattr(caught.value, "problems", [caught.value])
    assert any(p.setting == setting and says in str(p) for p in problems), problems


def test_an_unreadable_key_is_a_config_error(settings):
    s = replace(settings, vapid_private_key="not-a-key", vapid_subject="mailto:a@b.c")
    with pytest.raises(ConfigError, match="TIDINGS_VAPID_PRIVATE_KEY: must be a P-256"):
        webpush_setup(s)
