"""Settings: validated once, one clear line naming the bad setting."""

import pytest

from tidings import config, config_help
from tidings.core.errors import ConfigError

PROD = {"TIDINGS_DATABASE_URL": "postgresql://db/x", "TIDINGS_REDIS_URL": "redis://r:6379/0",
        "TIDINGS_JWT_SECRET": "s" * 32, "TIDINGS_API_KEYS": "k1, k2"}


def test_defaults_are_embedded_dev():
    s = config.load({})
    assert s.embedded and s.dev_mode and s.port == 8000


def test_production_settings_and_aliases():
    s = config.load({**PROD, "TIDINGS_DATABASE_URL": "", "DATABASE_URL": "postgres://h/d"})
    assert s.database_url == "postgres://h/d" and s.api_keys == ("k1", "k2")
    assert not s.embedded and not s.dev_mode and s.allowed_algorithms() == ("HS256",)
    assert "s" * 32 not in repr(s) and "k1" not in repr(s)


def test_flags_win_over_env():
    s = config.load(PROD, {"port": "9001", "api_keys": None})
    assert s.port == 9001


@pytest.mark.parametrize(("change", "setting"), [
    ({"TIDINGS_PORT": "eighty"}, "TIDINGS_PORT"),
    ({"TIDINGS_JWT_SECRET": ""}, "TIDINGS_JWT_SECRET"),
    ({"TIDINGS_JWT_SECRET": "short"}, "TIDINGS_JWT_SECRET"),
    ({"TIDINGS_API_KEYS": ""}, "TIDINGS_API_KEYS"),
    ({"TIDINGS_JWT_PUBLIC_KEY": "@/nonexistent"}, "TIDINGS_JWT_*"),
    ({"TIDINGS_JWT_ALGORITHMS": "none"}, "TIDINGS_JWT_ALGORITHMS"),
    ({"TIDINGS_JWT_ALGORITHMS": "RS256"}, "TIDINGS_JWT_ALGORITHMS"),
    ({"TIDINGS_DATABASE_URL": "mysql://x"}, "TIDINGS_DATABASE_URL"),
    ({"TIDINGS_MIGRATE": "perhaps"}, "TIDINGS_MIGRATE"),
    ({"TIDINGS_ALLOWED_ORIGINS": "evil"}, "TIDINGS_ALLOWED_ORIGINS"),
    ({"TIDINGS_WORKERS": "0"}, "TIDINGS_WORKERS"),
    ({"TIDINGS_ADMIN_KEYS": "adm,k2"}, "TIDINGS_ADMIN_KEYS"),
    ({"TIDINGS_METRICS_PORT": "8000"}, "TIDINGS_METRICS_PORT"),
    ({"TIDINGS_METRICS_PORT": "7998", "TIDINGS_WORKERS": "3"}, "TIDINGS_METRICS_PORT"),
    ({"TIDINGS_METRICS_PORT": "0", "TIDINGS_WORKERS": "2"}, "TIDINGS_METRICS_PORT"),
    ({"TIDINGS_METRICS_PORT": "65535", "TIDINGS_WORKERS": "2"}, "TIDINGS_METRICS_PORT"),
    ({"TIDINGS_METRICS_PORT": "http"}, "TIDINGS_METRICS_PORT"),
    ({"TIDINGS_METRICS": "sometimes"}, "TIDINGS_METRICS"),
    ({"TIDINGS_UNSUBSCRIBE_SECRET": "short"}, "TIDINGS_UNSUBSCRIBE_SECRET"),
])
def test_bad_settings_name_the_setting(change, setting):
    with pytest.raises(ConfigError) as exc:
        config.load({**PROD, **change})
    assert exc.value.setting == setting


def test_the_unsubscribe_secret_is_its_own_else_the_jwt_secret_else_none():
    own = "u" * 32
    s = config.load({**PROD, "TIDINGS_UNSUBSCRIBE_SECRET": own})
    assert s.unsubscribe_key == own and own not in repr(s)
    assert config.load(PROD).unsubscribe_key == "s" * 32
    keyed = {**PROD, "TIDINGS_JWT_SECRET": "", "TIDINGS_JWT_JWKS_URL": "https://idp/jwks"}
    assert config.load(keyed).unsubscribe_key is None


def test_metrics_settings():
    one, two = "adm-1-" + "x" * 16, "adm-2-" + "x" * 16
    s = config.load({**PROD, "TIDINGS_ADMIN_KEYS": f"{one}, {two}",
                     "TIDINGS_METRICS_PORT": "9100", "TIDINGS_WORKERS": "4"})
    assert s.admin_keys == (one, two) and one not in repr(s)
    assert s.metrics and s.metrics_port == 9100 and s.metrics_host == "127.0.0.1"
    assert config.load({**PROD, "TIDINGS_METRICS_PORT": "7997", "TIDINGS_WORKERS": "3"})
    assert not config.load({**PROD, "TIDINGS_METRICS": "false"}).metrics


def test_to_env_round_trips():
    s = config.load({**PROD, "TIDINGS_WORKERS": "3", "TIDINGS_DEV": "true",
                     "TIDINGS_ADMIN_KEYS": "adm-" + "x" * 16,
                     "TIDINGS_METRICS_PORT": "9100"})
    assert config.load(config.to_env(s)) == s


def test_readme_table_is_generated_from_the_settings():
    from pathlib import Path

    readme = (Path(__file__).parents[2] / "README.md").read_text()
    assert config_help.readme_table() in readme, (
        "README's configuration table is stale: paste tidings.config_help.readme_table()")
    for f in config.options():
        assert f"| `{f.metadata['env']}` | `{config.flag(f.name)}` |" in readme


def test_every_bad_setting_is_reported_at_once_in_plain_words():
    with pytest.raises(config.ConfigErrors) as exc:
        config.load({**PROD, "TIDINGS_PORT": "abc", "TIDINGS_WORKERS": "0",
                     "TIDINGS_LOG_LEVEL": "loud", "TIDINGS_JWT_SECRET": "short",
                     "TIDINGS_PUSH_LEASE": "nan"})
    lines = str(exc.value).splitlines()
    assert lines == [
        "TIDINGS_PORT: 'abc': must be a port number from 0 to 65535",
        "TIDINGS_WORKERS: '0': must be a whole number, 1 or more",
        "TIDINGS_PUSH_LEASE: 'nan': must be a positive number of seconds",
        "TIDINGS_LOG_LEVEL: 'loud': must be DEBUG, INFO, WARNING or ERROR",
        "TIDINGS_JWT_SECRET: must be at least 32 characters",
    ]
    assert "invalid literal" not in str(exc.value)


def test_flag_errors_name_the_flag():
    with pytest.raises(ConfigError) as exc:
        config.load(PROD, {"port": "x"})
    assert exc.value.setting == "--port"


def test_help_shows_defaults_and_choices():
    import argparse

    parser = argparse.ArgumentParser(prog="t")
    config_help.add_flags(parser)
    text = parser.format_help()
    assert "VALUE" not in text
    assert "--migrate {true,false}" in text and "--log-level {DEBUG,INFO,WARNING,ERROR}" in text
    assert "--port PORT" in text and "default 8000 [TIDINGS_PORT]" in text


def test_email_settings_are_checked_without_showing_the_password():
    s = config.load({**PROD, "TIDINGS_SMTP_URL": "smtp://u:s3cret@mail.example.com:587",
                     "TIDINGS_EMAIL_FROM": "Example <noreply@example.com>",
                     "TIDINGS_LOG_FORMAT": "JSON"})
    assert s.smtp_url and s.log_format == "json" and "s3cret" not in repr(s)
    with pytest.raises(config.ConfigErrors) as exc:
        config.load({**PROD, "TIDINGS_SMTP_URL": "smtp://u:s3cret@mail.example.com:99999",
                     "TIDINGS_LOG_FORMAT": "xml"})
    assert str(exc.value).splitlines() == [
        "TIDINGS_LOG_FORMAT: 'xml': must be text or json",
        "TIDINGS_SMTP_URL: the URL has a port that is not a number from 1 to 65535",
        "TIDINGS_EMAIL_FROM: e-mail through TIDINGS_SMTP_URL needs a sender address",
    ]
    with pytest.raises(ConfigError) as one:
        config.load({**PROD, "TIDINGS_EMAIL_FROM": "noreply"})
    assert str(one.value) == ("TIDINGS_EMAIL_FROM: 'noreply' is not an e-mail address"
                              " (local@domain)")
