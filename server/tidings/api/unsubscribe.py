"""One-click unsubscribe from e-mails (RFC 8058): ``POST /api/v1/unsubscribe?token=...``.

The token (:mod:`tidings.core.unsubscribe`) is the credential: it names the user
and the type, and only this server's secret signs one. A POST whose body is
``List-Unsubscribe=One-Click`` (form-encoded, as mail clients send it) turns
e-mail off for that type for that user, as their own PATCH of preferences would
(the preferences frame goes to their sockets), and answers 200; again, 200 and
nothing more changes. Refused, changing nothing: a token that does not verify (403
``invalid_unsubscribe_token``; none at all, 400), a required type (400
``required_type``), another body (400 ``not_one_click``).

Only a POST acts. A GET (a person who opened the link, a link scanner, a
preview) changes nothing: for a token that verifies it answers a page whose
button makes that POST.
"""

from __future__ import annotations

import html
from typing import Any
from urllib.parse import parse_qs

from aiohttp import web

from ..core import errors, unsubscribe
from ..core.errors import ValidationError
from .http import reply, services

routes = web.RouteTableDef()
_FORMS = ("application/x-www-form-urlencoded", "multipart/form-data")
_PAGE = """<!doctype html>
<html lang="en"><head><meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<meta name="robots" content="noindex"><title>Unsubscribe</title></head>
<body><form method="post">
<p>Stop e-mails of <strong>{title}</strong>?</p>
<input type="hidden" name="List-Unsubscribe" value="One-Click">
<button type="submit">Unsubscribe</button>
</form></body></html>
"""
_TOKEN = {"name": "token", "in": "query", "required": True,
          "description": "the signed token of the e-mail's List-Unsubscribe URL"
                         " (400 when absent, 403 when it does not verify)",
          "schema": {"type": "string", "maxLength": unsubscribe.MAX_TOKEN,
                     "pattern": "^[A-Za-z0-9_-]+\\.[A-Za-z0-9_-]+$"}}


def _errors(*answers: tuple[int, str]) -> dict[str, Any]:
    return {str(status): {"$ref": f"#/components/responses/{name}"} for status, name in answers}


#: Its entry in the API description (a form body and a page, which the table of the JSON
#: endpoints has not).
OPERATIONS: dict[str, Any] = {
    "post": {
        "summary": "One-click unsubscribe (RFC 8058): turn e-mail off for the link's user"
                   " and type, as the e-mail's List-Unsubscribe-Post says; 200 again once done",
        "security": [], "parameters": [_TOKEN],
        "requestBody": {"required": True, "content": {"application/x-www-form-urlencoded": {
            "schema": {"type": "object", "required": ["List-Unsubscribe"],
                       "properties": {"List-Unsubscribe": {"const": "One-Click"}}}}}},
        "responses": {
            "200": {"description": "e-mail of this type is off for the user", "content": {
                "application/json": {"schema": {
                    "type": "object", "required": ["type", "channel", "enabled"],
                    "additionalProperties": False,
                    "properties": {"type": {"type": "string"}, "channel": {"const": "email"},
                                   "enabled": {"const": False}}}}}},
            **_errors((400, "BadRequest"), (403, "Forbidden"), (404, "NotFound"),
                      (413, "TooLarge"), (503, "Unavailable"))}},
    "get": {
        "summary": "The page of an unsubscribe link opened in a browser: changes nothing; its"
                   " button makes the one-click POST",
        "security": [], "parameters": [_TOKEN],
        "responses": {"200": {"description": "the page",
                              "content": {"text/html": {"schema": {"type": "string"}}}},
                      **_errors((400, "BadRequest"), (403, "Forbidden"), (404, "NotFound"))}},
}


def _verified(request: web.Request) -> tuple[str, str]:
    """(user id, type) of the request's token; raises when there is none or it does not
    verify."""
    secret = services(request).settings.unsubscribe_key
    if not secret:
        raise errors.UNSUBSCRIBE_NOT_CONFIGURED.error(
            "one-click unsubscribe is not configured on this server (no"
            " TIDINGS_UNSUBSCRIBE_SECRET or TIDINGS_JWT_SECRET)")
    if "token" not in request.query:
        raise ValidationError("the token of the unsubscribe link is missing (?token=...)")
    return unsubscribe.read(unsubscribe.signing_key(secret), request.query["token"])


async def _one_click(request: web.Request) -> bool:
    """Whether the body is the RFC 8058 one: ``List-Unsubscribe=One-Click``. A body that
    does not decode (an unknown charset, bytes that are not its text, a broken multipart)
    is not."""
    try:
        if request.content_type in _FORMS:
            values = (await request.post()).getall("List-Unsubscribe", [])
        else:  # a client that left the content type out
            values = parse_qs(await request.text()).get("List-Unsubscribe", [])
    except (ValueError, LookupError):  # UnicodeDecodeError is a ValueError
        return False
    return values == ["One-Click"]


@routes.post(unsubscribe.PATH)
async def one_click(request: web.Request) -> web.Response:
    user_id, kind = _verified(request)
    if not await _one_click(request):
        raise errors.NOT_ONE_CLICK.error(
            "the body must be List-Unsubscribe=One-Click (RFC 8058)")
    await services(request).preferences.email_off(user_id, kind)
    return reply({"type": kind, "channel": "email", "enabled": False})


@routes.get(unsubscribe.PATH)
async def page(request: web.Request) -> web.Response:
    _, kind = _verified(request)
    declared = services(request).types.known.get(kind)
    title = html.escape(declared.title if declared is not None else kind)
    return web.Response(text=_PAGE.format(title=title), content_type="text/html",
                        headers={"Cache-Control": "no-store", "Referrer-Policy": "no-referrer"})
