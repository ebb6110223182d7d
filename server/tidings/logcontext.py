"""What a log line is about: the request, user and node of the code that logs it.

One context variable holds the three ids, so a task that serves a request or a
socket pays for one entry in its context, and tasks started from it inherit
them. The HTTP middleware and the socket handler call :func:`begin` for each
request and socket (a keep-alive connection's next request starts afresh),
authentication adds the user with :func:`bind`, and a node binds its id before
it starts its background tasks. :mod:`tidings.logsafe`'s JSON lines carry the
ids that are known.

A request id comes from the ``X-Request-Id`` header when that is 1 to 64
letters, digits, ``.``, ``_`` or ``-`` (a proxy's id), else it is made here.
"""

from __future__ import annotations

import os
import re
from contextvars import ContextVar
from typing import NamedTuple

_REQUEST_ID = re.compile(r"[A-Za-z0-9._-]{1,64}")


class Ids(NamedTuple):
    request_id: str | None = None
    user_id: str | None = None
    node_id: str | None = None


NO_IDS = Ids()
_ids: ContextVar[Ids] = ContextVar("tidings_log_ids", default=NO_IDS)


def current() -> Ids:
    return _ids.get()


def begin(header: str | None, node_id: str | None, user_id: str | None = None) -> str:
    """Start a request's (or socket's) ids; returns its request id (``header`` if usable)."""
    request_id = header if header and _REQUEST_ID.fullmatch(header) else os.urandom(8).hex()
    _ids.set(Ids(request_id, user_id, node_id))
    return request_id


def bind(**ids: str) -> None:
    """Add or replace ids (``user_id``, ``node_id``, ``request_id``) for what follows."""
    _ids.set(_ids.get()._replace(**ids))
