"""Errors a client can be told about: a stable code, an HTTP status, a message."""

from __future__ import annotations

import math


class TidingsError(Exception):
    """An error with a stable machine-readable ``code`` and the HTTP status it maps to."""

    status = 400
    code = "bad_request"

    def __init__(self, message: str, *, code: str | None = None, status: int | None = None):
        super().__init__(message)
        self.message = message
        if code is not None:
            self.code = code
        if status is not None:
            self.status = status

    def body(self) -> dict:
        return {"error": {"code": self.code, "message": self.message}}


class ValidationError(TidingsError):
    status = 400
    code = "invalid_request"


class AuthError(TidingsError):
    status = 401
    code = "unauthorized"


class NotFound(TidingsError):
    status = 404
    code = "not_found"


class Conflict(TidingsError):
    status = 409
    code = "conflict"


class TooLarge(TidingsError):
    status = 413
    code = "payload_too_large"


class RateLimited(TidingsError):
    status = 429
    code = "rate_limited"

    def __init__(self, retry_after: float):
        # Whole seconds, rounded up: the same number as the Retry-After header.
        super().__init__(f"too many requests; retry in {max(1, math.ceil(retry_after))} s")
        self.retry_after = retry_after


class Unavailable(TidingsError):
    """A dependency is down: nothing was done, retry after ``retry_after`` seconds (a 503)."""

    status = 503
    code = "unavailable"
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
