"""A template whose output is enormous: the sandbox bounds loops (range) but not
repetition, so one short template makes hundreds of megabytes when a type is saved
and again on every send."""

from __future__ import annotations

import pytest

from tidings.core import templates
from tidings.core.errors import ValidationError

HUGE = "{{ (message ~ ' ') * 2000000 }}"  # 16 characters of sample message: 34 MB


def test_a_type_whose_template_makes_megabytes_is_refused():
    with pytest.raises(ValidationError):
        templates.check("templates.push.body", HUGE)


def test_rendering_never_makes_megabytes():
    out = templates.render(HUGE, templates._SAMPLE_NOTIFICATION)
    assert out is None or len(out) <= 1_000_000
