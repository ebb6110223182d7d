"""What ``tidings serve`` prints: a reachable address, and dev hints only in dev mode."""

from __future__ import annotations

from dataclasses import replace

from tidings import config
from tidings.cli import common, serve

PROD = {"TIDINGS_DATABASE_URL": "postgresql://db/x", "TIDINGS_REDIS_URL": "redis://r:6379/0",
        "TIDINGS_JWT_SECRET": "s" * 32, "TIDINGS_API_KEYS": "k1"}


def test_a_wildcard_host_prints_a_reachable_address():
    for host, local in (("0.0.0.0", "http://127.0.0.1:8123"), ("::", "http://[::1]:8123")):
        s = common.resolve(config.load({**PROD, "TIDINGS_HOST": host, "TIDINGS_PORT": "8123"}))
        text = serve.banner(s, embedded=False)
        assert f"listening on {local} " in text and f"{host}:8123" not in text
        assert f"API description: {local}/api/v1/openapi.json" in text
        assert serve.local_url(s) == local


def test_public_url_wins():
    s = config.load({**PROD, "TIDINGS_HOST": "0.0.0.0",
                     "TIDINGS_PUBLIC_URL": "https://tidings.example.com/"})
    assert "listening on https://tidings.example.com (" in serve.banner(s, embedded=False)


def test_token_hints_only_in_dev_mode(tmp_path):
    prod = common.resolve(config.load(PROD))
    assert "tidings token" not in serve.banner(prod, embedded=False)
    dev = common.resolve(config.load({"TIDINGS_DATA_DIR": str(tmp_path / "d")}))
    assert dev.dev_mode and "tidings token alice" in serve.banner(dev, embedded=True)
    assert "tidings token" not in serve.banner(replace(dev, dev=False), embedded=True)


def test_the_console_is_named_only_with_admin_keys():
    s = config.load({**PROD, "TIDINGS_PUBLIC_URL": "https://tidings.example.com"})
    assert "/admin" not in serve.banner(s, embedded=False)
    with_keys = config.load({**PROD, "TIDINGS_PUBLIC_URL": "https://tidings.example.com",
                             "TIDINGS_ADMIN_KEYS": "adm-" + "x" * 20})
    assert "admin console:   https://tidings.example.com/admin" in serve.banner(
        with_keys, embedded=False)
    assert "x" * 20 not in serve.banner(with_keys, embedded=False)


def test_admin_keys_must_not_be_guessable():
    try:
        config.load({**PROD, "TIDINGS_ADMIN_KEYS": "short,adm-" + "x" * 20})
    except config.ConfigError as exc:
        assert str(exc) == "TIDINGS_ADMIN_KEYS: each admin key must be at least 16 characters"
    else:
        raise AssertionError("a short admin key was accepted")


def test_the_banner_says_where_metrics_are_scraped():
    s = config.load(PROD)
    assert "metrics" not in serve.banner(s, embedded=False), "nothing to scrape without a key"
    keyed = config.load({**PROD, "TIDINGS_ADMIN_KEYS": "adm-" + "x" * 20})
    assert "metrics:         http://127.0.0.1:8000/metrics (with an admin key)" in serve.banner(
        keyed, embedded=False)
    port = config.load({**PROD, "TIDINGS_METRICS_PORT": "9100"})
    assert "metrics:         http://127.0.0.1:9100/metrics\n" in serve.banner(
        port, embedded=False) + "\n"
    four = config.load({**PROD, "TIDINGS_METRICS_PORT": "9100", "TIDINGS_WORKERS": "4",
                        "TIDINGS_METRICS_HOST": "0.0.0.0"})
    assert ("metrics:         http://127.0.0.1:9100/metrics to port 9103 (one port per"
            " process)") in serve.banner(four, embedded=False)
    many = config.load({**PROD, "TIDINGS_ADMIN_KEYS": "adm-" + "x" * 20, "TIDINGS_WORKERS": "2"})
    assert "set TIDINGS_METRICS_PORT to scrape each process" in serve.banner(
        many, embedded=False)
    off = config.load({**PROD, "TIDINGS_METRICS_PORT": "9100", "TIDINGS_METRICS": "false"})
    assert "metrics" not in serve.banner(off, embedded=False)
