"""One-click unsubscribe from e-mails (RFC 8058): ``POST /api/v1/unsubscribe?token=...``.

The token (:mod:`tidings.core.unsubscribe`) is the credential: it names the user
and the type, and only this server's secret signs one. A POST whose body is
``List-Unsubscribe=One-Click`` (form-encoded, as mail clients send it) turns
e-mail off for that type for that user, as their own PATCH of preferences would
(the preferences frame goes to their sockets), and answers 200; again, 200 and
nothing more changes. Refused, changing nothing: a token that does not verify (403
``invalid_unsubscribe_token``; none at all, 400), a required type (400
``required_type``), another body (400 ``not_one_click``). Only a POST acts: a GET
(a link scanner, a preview) is a 405.
"""

from __future__ import annotations

from typing import Any
from urllib.parse import parse_qs

from aiohttp import web

from ..core import unsubscribe
from ..core.errors import NotFound, ValidationError
from .http import reply, services

routes = web.RouteTableDef()
_FORMS = ("application/x-www-form-urlencoded", "multipart/form-data")


async def _one_click(request: web.Request) -> bool:
    """Whether the body is the RFC 8058 one: ``List-Unsubscribe=One-Click``."""
    if request.content_type in _FORMS:
        values = (await request.post()).getall("List-Unsubscribe", [])
    else:  # a client that left the content type out
        values = parse_qs(await request.text()).get("List-Unsubscribe", [])
    return values == ["One-Click"]


#: Its entry in the API description (a form body, which the JSON endpoints' table has not).
OPERATION: dict[str, Any] = {
    "summary": "One-click unsubscribe (RFC 8058): turn e-mail off for the link's user and"
               " type, as the e-mail's List-Unsubscribe-Post says; 200 again once done",
    "security": [],
    "parameters": [{"name": "token", "in": "query", "required": True,
                    "description": "the signed token of the e-mail's List-Unsubscribe URL"
                                   " (400 when absent, 403 when it does not verify)",
                    "schema": {"type": "string", "maxLength": unsubscribe.MAX_TOKEN,
                               "pattern": "^[A-Za-z0-9_-]+\\.[A-Za-z0-9_-]+$"}}],
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
        **{str(status): {"$ref": f"#/components/responses/{name}"} for status, name in (
            (400, "BadRequest"), (403, "Forbidden"), (404, "NotFound"), (413, "TooLarge"),
            (503, "Unavailable"))}},
}


@routes.post(unsubscribe.PATH)
async def one_click(request: web.Request) -> web.Response:
    svc = services(request)
    secret = svc.settings.unsubscribe_key
    if not secret:
        raise NotFound("one-click unsubscribe is not configured on this server (no"
                       " TIDINGS_UNSUBSCRIBE_SECRET or TIDINGS_JWT_SECRET)",
                       code="unsubscribe_not_configured")
    if "token" not in request.query:
        raise ValidationError("the token of the unsubscribe link is missing (?token=...)")
    user_id, kind = unsubscribe.read(unsubscribe.signing_key(secret), request.query["token"])
    if not await _one_click(request):
        raise ValidationError("the body must be List-Unsubscribe=One-Click (RFC 8058)",
                              code="not_one_click")
    await svc.preferences.email_off(user_id, kind)
    return reply({"type": kind, "channel": "email", "enabled": False})
