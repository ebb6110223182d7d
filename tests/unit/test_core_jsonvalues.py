"""The limits of decoded JSON, and telling from a JSON text alone that it keeps them."""

import json

import orjson
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from tidings.core.errors import ValidationError
from tidings.core.jsonvalues import MAX_DEPTH, check_value, plainly_within

_leaves = (st.none() | st.booleans() | st.integers(min_value=-(2**70), max_value=2**70)
           | st.floats(allow_nan=False, allow_infinity=False) | st.text(max_size=8))
_values = st.recursive(_leaves, lambda inner: st.lists(inner, max_size=3)
                       | st.dictionaries(st.text(max_size=4), inner, max_size=3),
                       max_leaves=60)


def _within(value) -> bool:
    try:
        check_value(value)
    except ValidationError:
        return False
    return True


@settings(max_examples=500)
@given(_values, st.sampled_from([json.dumps, lambda v: json.dumps(v, ensure_ascii=False)]))
def test_a_text_plainly_within_holds_only_values_within(value, dumps):
    text = dumps(value).encode()
    if plainly_within(text):
        assert _within(json.loads(text))


@pytest.mark.parametrize("text", [
    b'{"k": "a\\u0000b"}', b'{"a\\u0000": 1}', b'{"k": 9223372036854775808}',
    b'{"k": -1000000000000000000}', b'[1e19]', b'[1E2]', b'[0.5e-3]',
    b"[" * (MAX_DEPTH + 1) + b"]" * (MAX_DEPTH + 1),
])
def test_what_may_break_a_limit_is_not_plainly_within(text):
    assert not plainly_within(text)


@pytest.mark.parametrize("text", [
    b'{"recipients": ["u1"], "message": "hello", "data": {"n": 123456789012345678,'
    b' "f": -0.25, "t": true, "s": "x\\n"}}',
    b"[" * MAX_DEPTH + b"]" * MAX_DEPTH,
])
def test_ordinary_bodies_are_plainly_within(text):
    assert plainly_within(text) and _within(orjson.loads(text))
