"""Requests aiohttp refuses before any handler runs: a JSON error, and a log line with no header.

aiohttp's HTTP parser refuses a malformed request line or header (a control
character, a header over 8 KiB) itself; its stock ``handle_error`` answers in
plain text and logs the parser's exception, whose text quotes the offending
line, credentials included. :func:`install` replaces that method so such a
request gets ``{"error": {"code", "message"}}`` and the log gets one line
naming the client and the kind of error, never the request's bytes.
"""

from __future__ import annotations

import logging

import orjson
from aiohttp import web
from aiohttp.web_protocol import RequestHandler

from ..core import errors

log = logging.getLogger(__name__)

_KINDS = {400: errors.BAD_HTTP_REQUEST, 413: errors.PAYLOAD_TOO_LARGE,
          431: errors.HEADERS_TOO_LARGE}


def handle_error(self: RequestHandler, request: web.BaseRequest, status: int = 500,
                 exc: BaseException | None = None, message: str | None = None
                 ) -> web.StreamResponse:
    """The answer to a request the parser refused (4xx) or that escaped its handler (500).

    Closes the connection afterwards, as aiohttp's own does.
    """
    kind = type(exc).__name__ if exc is not None else "error"
    if status >= 500:
        log.error("unhandled %s on a request from %s", kind, request.remote, exc_info=exc)
        code, text = errors.INTERNAL_ERROR.code, errors.INTERNAL_ERROR.message
    else:
        log.info("refused a malformed request from %s (%s, %d)", request.remote, kind, status)
        code = _KINDS.get(status, errors.BAD_HTTP_REQUEST).code
        text = f"malformed HTTP request line or header ({kind})"
    if request.writer.output_size > 0:
        raise ConnectionError("the response has begun; no error body can be sent")
    resp = web.Response(status=status, content_type="application/json",
                        body=orjson.dumps({"error": {"code": code, "message": text}}))
    resp.force_close()
    return resp


def install() -> None:
    """Make every aiohttp server in this process answer parser errors as above (idempotent)."""
    RequestHandler.handle_error = handle_error  # type: ignore[method-assign,assignment]
