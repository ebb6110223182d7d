"""The setting parsers, for any text: a value in range, or the project's words (no Python's)."""

import math

from hypothesis import given
from hypothesis import strategies as st

from tidings import config
from tidings.config_values import LOG_LEVELS, read_level, read_port, read_rate
from tidings.core.errors import ConfigError


def _outcome(parse, text):
    try:
        return "ok", parse(text)
    except ValueError as exc:
        return "refused", str(exc)


@given(st.one_of(st.integers(-10**6, 10**6).map(str), st.text(max_size=12)))
def test_port_is_a_whole_number_in_range_or_refused_plainly(text):
    kind, value = _outcome(read_port, text)
    if kind == "ok":
        assert 0 <= value <= 65535 and value == int(text)
    else:
        assert value == "must be a port number from 0 to 65535"


@given(st.one_of(st.floats(allow_nan=True, allow_infinity=True).map(str), st.text(max_size=12)))
def test_rate_is_finite_and_not_negative_or_refused_plainly(text):
    kind, value = _outcome(read_rate, text)
    if kind == "ok":
        assert math.isfinite(value) and value >= 0
    else:
        assert value == "must be 0 (off) or a positive rate"


@given(st.text(max_size=10))
def test_log_level_is_one_of_four(text):
    kind, value = _outcome(read_level, text)
    assert (kind == "ok") == (text.strip().upper() in LOG_LEVELS)
    if kind == "ok":
        assert value == text.strip().upper()


@given(st.dictionaries(
    st.sampled_from([f.metadata["env"] for f in config.options()]), st.text(max_size=8),
    max_size=6))
def test_any_environment_loads_or_names_each_bad_setting(env):
    try:
        config.load(env, require_auth=False)
    except ConfigError as exc:
        problems = getattr(exc, "problems", [exc])
        names = {f.metadata["env"] for f in config.options()} | {"TIDINGS_JWT_*"}
        for problem in problems:
            assert problem.setting in names
            assert "invalid literal" not in str(problem) and "could not convert" not in str(
                problem)
        assert len({p.setting for p in problems}) == len(problems)
