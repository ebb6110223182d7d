"""Declared request schemas of the operator's console (``/api/v1/admin/...``).

A send takes :class:`~tidings.core.requests.PublishRequest` itself: the console
publishes exactly what a producer could. A send to a type's subscribers takes
:class:`TypeSend`: a publish's content and push options, with neither
recipients (the subscribers are) nor type (the path names it), and without
``delay``, ``persist`` or ``idempotency_key`` (the subscribers are read as the
send goes, and stored).
"""

from __future__ import annotations

from typing import Annotated, Any

import msgspec
from msgspec import Meta, Struct

from .ids import USER_ID_PATTERN, whole
from .jsonvalues import MAX_INT
from .requests import MAX_MESSAGE_CHARS, PublishRequest, PushOptions, ShortText, UserIdInt

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


#: A user id as a cursor: no :func:`~.ids.user_id` check follows, so the schema's is whole.
UserIdText = Annotated[str, Meta(pattern=whole(USER_ID_PATTERN), min_length=1, max_length=255)]


class SubscribersQuery(Struct):
    """Query of ``GET /api/v1/admin/types/{name}/subscribers``: ``limit`` subscribers
    whose ids sort after ``after``."""

    limit: Annotated[int, Meta(ge=1, le=MAX_LIMIT)] = DEFAULT_LIMIT
    after: UserIdText | msgspec.UnsetType = msgspec.UNSET

    @property
    def cursor(self) -> str:
        return "" if self.after is msgspec.UNSET else self.after


class TypeSend(Struct, forbid_unknown_fields=True):
    """``POST /api/v1/admin/types/{name}/notifications``: one notification for every
    subscriber of the type (``after``: only those whose ids sort after it, to resume a send
    that stopped)."""

    message: Annotated[str, Meta(min_length=1, max_length=MAX_MESSAGE_CHARS)]
    title: ShortText | None = None
    data: dict[str, Any] | None = None
    created_by: ShortText | UserIdInt | None = None
    model: ShortText | None = None
    instance: ShortText | UserIdInt | None = None
    method: ShortText | None = None
    changed_data: dict[str, Any] | list[Any] | None = None
    custom_info: dict[str, Any] | list[Any] | str | None = None
    push: PushOptions | None = None
    after: UserIdText | None = None


def type_publish(req: TypeSend, type_name: str, users: list[str]) -> PublishRequest:
    """The publish of ``req`` to ``users``, carrying the type ``type_name``."""
    fields = msgspec.structs.asdict(req)
    del fields["after"]
    return PublishRequest(recipients=list(users), type=type_name, **fields)


class UserQuery(Struct):
    """Query of ``GET /api/v1/admin/user``: the user id looked up."""

    id: UserIdText


class JobIds(Struct, forbid_unknown_fields=True):
    """``POST /api/v1/admin/dead-letters/requeue`` and ``.../discard``: dead letters by id."""

    ids: Annotated[list[Annotated[int, Meta(ge=1, le=MAX_INT)]],
                   Meta(min_length=1, max_length=MAX_JOB_IDS)]
