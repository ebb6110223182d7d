"""A publish's uids: a random uuid4 base, and each recipient's uid derived from it."""

import uuid

from hypothesis import given
from hypothesis import strategies as st

from tidings.services import drafting


def test_a_base_is_a_random_uuid4_in_its_canonical_text():
    bases = {drafting.base() for _ in range(1000)}
    assert len(bases) == 1000
    for text in bases:
        parsed = uuid.UUID(text)
        assert str(parsed) == text  # lower-case, hyphenated: what str(uuid4()) gives
        assert parsed.version == 4 and parsed.variant == uuid.RFC_4122


@given(st.integers(min_value=1, max_value=300))
def test_the_uids_of_a_base_are_distinct_uuid4s_and_start_with_the_base(n):
    base = drafting.base()
    uids = drafting.uids(base, n)
    assert uids[0] == base and len(set(uids)) == n
    assert all(uuid.UUID(u).version == 4 and uuid.UUID(u).variant == uuid.RFC_4122
               for u in uids)
