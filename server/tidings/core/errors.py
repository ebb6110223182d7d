"""Errors a client can be told about: a stable code, an HTTP status, a message."""

from __future__ import annotations


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
        super().__init__(f"too many requests; retry in {retry_after:.1f} s")
        self.retry_after = retry_after


class Unavailable(TidingsError):
    status = 503
    code = "unavailable"


class ConfigError(Exception):
    """A setting is missing, malformed or contradicts another; names the setting."""

    def __init__(self, setting: str, problem: str):
        super().__init__(f"{setting}: {problem}")
        self.setting = setting
