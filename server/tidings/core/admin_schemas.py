"""Declared request schemas of the operator's console (``/api/v1/admin/...``).

A send takes :class:`~tidings.core.schemas.PublishRequest` itself: the console
publishes exactly what a producer could.
"""

from __future__ import annotations

from typing import Annotated

import msgspec
from msgspec import Meta, Struct

from .ids import USER_ID_PATTERN
from .jsonvalues import MAX_INT

MAX_LIMIT = 100
DEFAULT_LIMIT = 50
MAX_JOB_IDS = 1000


class PageQuery(Struct):
    """Query of the console's lists, newest first: ``limit`` rows with ids below ``before``."""

    limit: Annotated[int, Meta(ge=1, le=MAX_LIMIT)] = DEFAULT_LIMIT
    before: Annotated[int, Meta(ge=1, le=MAX_INT)] | msgspec.UnsetType = msgspec.UNSET

    @property
    def cursor(self) -> int | None:
        return None if self.before is msgspec.UNSET else self.before


class UserQuery(Struct):
    """Query of ``GET /api/v1/admin/user``: the user id looked up."""

    id: Annotated[str, Meta(pattern=USER_ID_PATTERN, min_length=1, max_length=255)]


class JobIds(Struct, forbid_unknown_fields=True):
    """``POST /api/v1/admin/dead-letters/requeue`` and ``.../discard``: dead letters by id."""

    ids: Annotated[list[Annotated[int, Meta(ge=1, le=MAX_INT)]],
                   Meta(min_length=1, max_length=MAX_JOB_IDS)]
