"""Errors a client can be told about, each declared once; and the exceptions that carry them.

The catalog: every code an HTTP answer or a socket's ``error`` frame can carry
is an :class:`ErrorKind` here (code, HTTP status, default message, when it is
given, what the client should do), listed in :data:`CATALOG`. A raise site names
its kind (``raise errors.INVALID_PAGE.error("Invalid page.")``) or raises a
class whose kind is fixed (``NotFound``, ``ValidationError``, ...): no code is
spelled anywhere else, so none can be invented. The README's error table
(:func:`markdown_table`) and the API description's error responses are made
from the catalog, and the tests keep them equal.

Also here: the project's internal exceptions that are no answer to a client
(:class:`StoreError`, :class:`ConfigError`).
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import ClassVar

FIX = "fix the request"
REAUTH = "get a valid token or key, then retry"
RETRY = "retry after Retry-After seconds"
CONFIGURE = "ask the operator; the server is not set up for this"
ASK_AGAIN = "ask again later with the same request"
REPORT = "retry later; report it if it lasts"


@dataclass(frozen=True, slots=True)
class ErrorKind:
    """One error a client can get. ``status`` is None only for :data:`HTTP_ERROR`, which
    takes the HTTP layer's own 4xx; a ``socket_only`` kind is an ``error`` frame's only."""

    code: str
    status: int | None
    message: str
    when: str
    action: str
    socket_only: bool = False

    def error(self, message: str | None = None) -> TidingsError:
        """The exception to raise for this kind (its status's class), with ``message`` or
        the default one."""
        return _CLASSES.get(self.status, TidingsError)(message, kind=self)


#: Every kind by code, in the order of the README's table.
CATALOG: dict[str, ErrorKind] = {}


def _declare(code: str, status: int | None, message: str, when: str, action: str,
             socket_only: bool = False) -> ErrorKind:
    if code in CATALOG:
        raise ValueError(f"error code {code!r} is declared twice")
    kind = CATALOG[code] = ErrorKind(code, status, message, when, action, socket_only)
    return kind


INVALID_REQUEST = _declare(
    "invalid_request", 400, "the request is not valid",
    "the body or query fails validation: wrong types, unknown fields, values out of range",
    FIX)
INVALID_JSON = _declare(
    "invalid_json", 400, "malformed JSON", "an empty body, or one that is not JSON", FIX)
TOO_DEEP = _declare(
    "too_deep", 400, "JSON nests too deep",
    "JSON nested deeper than 32 levels of objects and arrays", FIX)
NUMBER_OUT_OF_RANGE = _declare(
    "number_out_of_range", 400, "a number is outside the 64-bit range",
    "a number outside the signed 64-bit range", FIX)
NUL_CHARACTER = _declare(
    "nul_character", 400, "text may not contain NUL (\\u0000) characters",
    "a NUL (`\\u0000`) in any text", FIX)
INVALID_USER_ID = _declare(
    "invalid_user_id", 400, "not a user id", "a user id breaking the user-id rule", FIX)
UIDS_REQUIRED = _declare(
    "uids_required", 400, "notification_uids are required",
    "`MARK_AS_READ`/`MARK_AS_REMOVED` without `notification_uids`", FIX)
RESERVED_EXTRA_KEY = _declare(
    "reserved_extra_key", 400, "push.extra holds a reserved key",
    "`push.extra` holds a key APNs or FCM reserve (`aps`, `from`, `google…`, …)", FIX)
INVALID_TYPE_NAME = _declare(
    "invalid_type_name", 400, "not a type name", "a type name breaking the type-name rule", FIX)
INVALID_TEMPLATE = _declare(
    "invalid_template", 400, "the template is not valid",
    "a type's template that does not compile, names an unknown variable or is too long", FIX)
INVALID_TIMEZONE = _declare(
    "invalid_timezone", 400, "not an IANA time zone name",
    "a profile's timezone that is not an IANA time zone name this server knows", FIX)
INVALID_PREFERENCES = _declare(
    "invalid_preferences", 400, "the preferences are not valid",
    "a preferences change naming a channel its type does not use", FIX)
REQUIRED_TYPE = _declare(
    "required_type", 400, "this type is required",
    "turning off a channel a `required` type has on by default, by preferences or by a"
    " one-click unsubscribe", FIX)
NOT_ONE_CLICK = _declare(
    "not_one_click", 400, "the body must be List-Unsubscribe=One-Click",
    "a one-click unsubscribe whose body is not the RFC 8058 one", FIX)
ENDPOINT_NOT_ALLOWED = _declare(
    "endpoint_not_allowed", 400, "the subscription's endpoint is not allowed",
    "a Web Push endpoint that is not https or not on a host `TIDINGS_WEBPUSH_ALLOWED_HOSTS`"
    " allows", FIX)
INVALID_SUBSCRIPTION_KEYS = _declare(
    "invalid_subscription_keys", 400, "the subscription's keys are not valid",
    "a Web Push subscription whose `p256dh` is no P-256 key or whose `auth` is not 16 bytes",
    FIX)
BAD_HTTP_REQUEST = _declare(
    "bad_http_request", 400, "malformed HTTP request line or header",
    "a request line or header the HTTP parser refuses (a control character, a header over"
    " 8 KiB); the connection is closed", FIX)
NOT_A_WEBSOCKET = _declare(
    "not_a_websocket", 400, "this endpoint takes WebSocket upgrades only",
    "a request to the socket endpoint that is no WebSocket upgrade (with a valid token)",
    "open a WebSocket")
UNAUTHORIZED = _declare(
    "unauthorized", 401, "credentials are required",
    "no token or key (with `WWW-Authenticate: Bearer`)", REAUTH)
INVALID_TOKEN = _declare(
    "invalid_token", 401, "the token is not valid",
    "a user token that is malformed, badly signed, or whose claims are not accepted", REAUTH)
TOKEN_EXPIRED = _declare(
    "token_expired", 401, "token expired", "a user token past its `exp`", REAUTH)
INVALID_API_KEY = _declare(
    "invalid_api_key", 401, "API key is not valid",
    "a key that is not one of `TIDINGS_API_KEYS`", REAUTH)
JWKS_UNAVAILABLE = _declare(
    "jwks_unavailable", 401, "cannot fetch signing keys",
    "the signing keys (`TIDINGS_JWT_JWKS_URL`) could not be fetched to verify the token",
    "retry later")
INVALID_ADMIN_KEY = _declare(
    "invalid_admin_key", 403, "admin key is not valid",
    "a key that is not one of `TIDINGS_ADMIN_KEYS` (the console, `/metrics`)", REAUTH)
INVALID_UNSUBSCRIBE_TOKEN = _declare(
    "invalid_unsubscribe_token", 403, "this unsubscribe link is not valid",
    "a one-click unsubscribe link changed, or signed with a secret this server no longer has",
    "open the preferences page instead")
HOST_NOT_ALLOWED = _declare(
    "host_not_allowed", 403, "this Host may not get dev tokens",
    "a dev token asked for under a Host naming neither a loopback address nor the public"
    " URL's host", "use a loopback address or the public URL")
NOT_FOUND = _declare(
    "not_found", 404, "not found",
    "not the caller's (never revealed), does not exist, or is turned off on this server",
    "do not retry")
INVALID_PAGE = _declare(
    "invalid_page", 404, "Invalid page.", "an inbox page past the last one",
    "go back to page 1")
UNKNOWN_TYPE = _declare(
    "unknown_type", 404, "no such notification type",
    "preferences naming a type that is not declared, or a console send to or listing of the"
    " subscribers of one", FIX)
UNSUBSCRIBE_NOT_CONFIGURED = _declare(
    "unsubscribe_not_configured", 404, "one-click unsubscribe is not configured",
    "a one-click unsubscribe with neither `TIDINGS_UNSUBSCRIBE_SECRET` nor"
    " `TIDINGS_JWT_SECRET` set", CONFIGURE)
WEBPUSH_NOT_CONFIGURED = _declare(
    "webpush_not_configured", 404, "Web Push is not configured on this server",
    "the VAPID key is asked for without `TIDINGS_VAPID_PRIVATE_KEY`", CONFIGURE)
METHOD_NOT_ALLOWED = _declare(
    "method_not_allowed", 405, "method not allowed", "with an `Allow` header",
    "use a method of `Allow`")
IDEMPOTENCY_KEY_REUSED = _declare(
    "idempotency_key_reused", 409, "idempotency_key was used with a different request",
    "the same `idempotency_key` was sent with another body", "use a new idempotency_key")
PUBLISH_IN_PROGRESS = _declare(
    "publish_in_progress", 409, "a publish with this idempotency_key is still being stored",
    "a large publish with this `idempotency_key` is still being stored", ASK_AGAIN)
PAYLOAD_TOO_LARGE = _declare(
    "payload_too_large", 413, "request body is too large", "the body is over 1 MiB", FIX)
DATA_TOO_LARGE = _declare(
    "data_too_large", 413, "data is too large",
    "`data` + `changed_data` + `custom_info` + `push.extra` are over 16 KiB", FIX)
UNSUPPORTED_MEDIA_TYPE = _declare(
    "unsupported_media_type", 415, "request bodies are JSON",
    "a body whose Content-Type is not JSON", "send Content-Type: application/json")
RATE_LIMITED = _declare(
    "rate_limited", 429, "too many requests",
    "over `TIDINGS_RATE_LIMIT_USER` (per user) or `TIDINGS_RATE_LIMIT_PRODUCER` (per API"
    " key), per node; `Retry-After` and the message say the same whole seconds. On a socket:"
    " over the message limit (an `error` frame; the message was not processed)",
    RETRY + " (on a socket: send slower)")
HEADERS_TOO_LARGE = _declare(
    "headers_too_large", 431, "request headers are too large",
    "request headers over the HTTP parser's limit; the connection is closed", FIX)
HTTP_ERROR = _declare(
    "http_error", None, "refused by the HTTP layer",
    "any other refusal by the HTTP layer, with its own status (the message is the status's"
    " reason)", FIX)
INTERNAL_ERROR = _declare(
    "internal_error", 500, "internal server error",
    "logged on the server, without credentials", REPORT)
UNAVAILABLE = _declare(
    "unavailable", 503, "a dependency is unavailable",
    "PostgreSQL is unreachable (nothing was done), or Redis is for a live-only"
    " (`persist: false`) publish; with `Retry-After`. A stored publish is never answered"
    " with an error", RETRY)
TOO_MANY_UIDS = _declare(
    "too_many_uids", None, "too many uids",
    "a socket's `mark_read` naming more than 100 uids (an `error` frame; nothing changed)",
    "send fewer uids per message", socket_only=True)


def http_kinds(status: int) -> list[ErrorKind]:
    """The kinds an HTTP answer with ``status`` can carry, in catalog order."""
    return [k for k in CATALOG.values() if k.status == status and not k.socket_only]


def markdown_table() -> str:
    """The README's error table (Markdown), one row per kind, in catalog order."""
    rows = ["| Status | Code | When | What to do |", "|---|---|---|---|"]
    for k in CATALOG.values():
        status = "socket" if k.socket_only else "4xx" if k.status is None else str(k.status)
        rows.append(f"| {status} | `{k.code}` | {k.when} | {k.action} |")
    return "\n".join(rows) + "\n"


class TidingsError(Exception):
    """An error answered to a client: its :class:`ErrorKind` gives the code and the status.

    A subclass fixes a default kind; the base class needs ``kind`` (use
    :meth:`ErrorKind.error`). ``message`` defaults to the kind's.
    """

    kind: ClassVar[ErrorKind]

    def __init__(self, message: str | None = None, *, kind: ErrorKind | None = None):
        if kind is not None:
            self.kind = kind  # type: ignore[misc]
        elif not hasattr(self, "kind"):
            raise TypeError(f"{type(self).__name__} needs a kind of the catalog")
        self.message = self.kind.message if message is None else message
        super().__init__(self.message)

    @property
    def code(self) -> str:
        return self.kind.code

    @property
    def status(self) -> int:
        assert self.kind.status is not None, "http_error and socket frames are never raised"
        return self.kind.status


class ValidationError(TidingsError):
    kind = INVALID_REQUEST


class AuthError(TidingsError):
    kind = UNAUTHORIZED


class NotFound(TidingsError):
    kind = NOT_FOUND


class Conflict(TidingsError):
    """A 409; its kind is always named (:data:`IDEMPOTENCY_KEY_REUSED`, ...)."""


class TooLarge(TidingsError):
    kind = PAYLOAD_TOO_LARGE


_CLASSES: dict[int | None, type[TidingsError]] = {
    400: ValidationError, 401: AuthError, 404: NotFound, 409: Conflict, 413: TooLarge}


class RateLimited(TidingsError):
    kind = RATE_LIMITED

    def __init__(self, retry_after: float):
        # Whole seconds, rounded up: the same number as the Retry-After header.
        super().__init__(f"too many requests; retry in {max(1, math.ceil(retry_after))} s")
        self.retry_after = retry_after


class Unavailable(TidingsError):
    """A dependency is down: nothing was done, retry after ``retry_after`` seconds (a 503)."""

    kind = UNAVAILABLE
    dependency = "service"
    retry_after = 1.0


class StoreUnavailable(Unavailable):
    """PostgreSQL could not be reached, or the connection broke before an answer came.

    Raised by the store edge for every connection-class failure. The outcome of a
    write in flight is unknown: the caller may retry it only if the write is
    idempotent.
    """

    dependency = "postgres"


class StoreError(Exception):
    """PostgreSQL refused a statement (bad data, a constraint): the statement changed nothing.

    Raised by the store edge in place of the driver's own errors; ``cause`` names it.
    """

    def __init__(self, message: str, cause: str = ""):
        super().__init__(message)
        self.cause = cause


class BusUnavailable(Unavailable):
    """Redis could not be reached, or failed a command; raised by the bus edge."""

    dependency = "redis"


class ConfigError(Exception):
    """A setting is missing, malformed or contradicts another; names the setting."""

    def __init__(self, setting: str, problem: str):
        super().__init__(f"{setting}: {problem}")
        self.setting = setting
