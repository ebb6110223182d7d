"""Declared request schemas and their limits (decoded by :mod:`.decoding`).

The JSON Schema of each type feeds the OpenAPI document. Limits on free-form
JSON (depth, number range, NUL) live in :mod:`.jsonvalues`, identifier rules
in :mod:`.ids`; :func:`check_publish` holds the rules between fields.
"""

from __future__ import annotations

import uuid
from typing import Annotated, Any, ClassVar, Literal

import msgspec
from msgspec import Meta, Struct

from . import errors
from .errors import ValidationError
from .ids import (
    APNS_TOKEN_PATTERN,
    FCM_TOKEN_PATTERN,
    MAX_ENDPOINT_CHARS,
    USER_ID_PATTERN,
    user_ids,
    webpush_token,
    whole,
)
from .jsonvalues import MAX_INT

MAX_BODY_BYTES = 1024 * 1024
MAX_RECIPIENTS = 10_000
MAX_MESSAGE_CHARS = 4000
MAX_PAYLOAD_BYTES = 16 * 1024  # data + changed_data + custom_info + push.extra, JSON-encoded
MAX_UIDS = 1000
MAX_BATCH = 1000  # publishes per POST /api/v1/notifications/batch
MAX_PAGE_SIZE = 100
DEFAULT_PAGE_SIZE = 20
MAX_DELAY_SECONDS = 7 * 24 * 3600
MAX_PAGE = 1_000_000

UserIdText = Annotated[str, Meta(pattern=USER_ID_PATTERN, min_length=1, max_length=255)]
UserIdInt = Annotated[int, Meta(ge=0, le=MAX_INT)]
#: A recipient: the user-id rule in the API description, its lengths checked while
#: decoding and its characters by :func:`check_publish` (one scan for all recipients).
Recipient = Annotated[str, Meta(min_length=1, max_length=255,
                                extra_json_schema={"pattern": USER_ID_PATTERN})] | UserIdInt
ShortText = Annotated[str, Meta(max_length=255)]
PushWhen = Literal["offline", "unread_after", "always", "never"]
Action = Literal["MARK_AS_READ", "MARK_AS_REMOVED", "MARK_ALL_AS_READ", "REMOVED_ALL"]


class PushOptions(Struct, forbid_unknown_fields=True, omit_defaults=True):
    """When and how a recipient with no open socket gets a mobile push."""

    when: PushWhen = "offline"
    after: Annotated[float, Meta(ge=0, le=MAX_DELAY_SECONDS)] | None = None
    badge: Annotated[int, Meta(ge=0, le=1_000_000)] | None = None
    sound: ShortText | None = None
    extra: dict[str, Any] | None = None
    # an APNs header of at most 64 bytes: printable ASCII, so characters are bytes
    collapse_id: Annotated[str, Meta(max_length=64, pattern=whole(r"^[\x20-\x7e]*$"))] | None = None
    ttl: Annotated[int, Meta(ge=0, le=28 * 24 * 3600)] | None = None


class PublishRequest(Struct, forbid_unknown_fields=True):
    """``POST /api/v1/notifications``: one notification for many recipients."""

    recipients: Annotated[list[Recipient], Meta(min_length=1, max_length=MAX_RECIPIENTS)]
    message: Annotated[str, Meta(min_length=1, max_length=MAX_MESSAGE_CHARS)]
    type: ShortText | None = None
    title: ShortText | None = None
    data: dict[str, Any] | None = None
    created_by: ShortText | UserIdInt | None = None
    model: ShortText | None = None
    instance: ShortText | UserIdInt | None = None
    method: ShortText | None = None
    changed_data: dict[str, Any] | list[Any] | None = None
    custom_info: dict[str, Any] | list[Any] | str | None = None
    idempotency_key: Annotated[str, Meta(min_length=1, max_length=255)] | None = None
    push: PushOptions | None = None
    delay: Annotated[float, Meta(ge=0, le=MAX_DELAY_SECONDS)] | None = None
    persist: bool = True


class BatchRequest(Struct, forbid_unknown_fields=True):
    """``POST /api/v1/notifications/batch``: distinct publishes, each a JSON object decoded
    (and answered) on its own as a :class:`PublishRequest`."""

    notifications: Annotated[list[msgspec.Raw], Meta(min_length=1, max_length=MAX_BATCH)]


class PatchRequest(Struct, forbid_unknown_fields=True):
    """``PATCH /api/v1/me/notifications``: one inbox action."""

    action_choice: Action
    notification_uids: Annotated[list[uuid.UUID], Meta(max_length=MAX_UIDS)] = []


class DetailPatch(Struct, forbid_unknown_fields=True):
    """``PATCH /api/v1/me/notifications/{uid}``: mark one read or removed."""

    is_read: Literal[True] | None = None  # a notification cannot be marked unread
    status: Literal["ACTIVE", "REMOVED"] | None = None


class _Device(Struct, forbid_unknown_fields=True, kw_only=True, tag_field="platform"):
    app_id: ShortText | None = None
    name: ShortText | None = None
    active: bool = True


class ApnsDevice(_Device, tag="apns"):
    """``POST /api/v1/me/devices`` with ``platform: "apns"``: a hex device token."""

    platform: ClassVar[str] = "apns"
    token: Annotated[str, Meta(pattern=APNS_TOKEN_PATTERN)]


class FcmDevice(_Device, tag="fcm"):
    """``POST /api/v1/me/devices`` with ``platform: "fcm"``: a registration token."""

    platform: ClassVar[str] = "fcm"
    token: Annotated[str, Meta(pattern=FCM_TOKEN_PATTERN)]


class WebPushKeys(Struct, forbid_unknown_fields=True):
    p256dh: Annotated[str, Meta(min_length=1, max_length=200)]
    auth: Annotated[str, Meta(min_length=1, max_length=200)]


class WebPushSubscription(Struct, forbid_unknown_fields=True):
    """A browser's ``PushSubscription.toJSON()``; ``expirationTime`` is accepted and ignored."""

    endpoint: Annotated[str, Meta(min_length=1, max_length=MAX_ENDPOINT_CHARS)]
    keys: WebPushKeys
    # milliseconds since the epoch; at most JavaScript's largest exact integer
    expirationTime: Annotated[float, Meta(ge=0, le=2**53 - 1)] | None = None


class WebPushDevice(_Device, tag="webpush"):
    """``POST /api/v1/me/devices`` with ``platform: "webpush"``: a browser's push subscription."""

    platform: ClassVar[str] = "webpush"
    subscription: WebPushSubscription

    @property
    def token(self) -> str:
        """The device's id in the devices API, derived from the endpoint."""
        return webpush_token(self.subscription.endpoint)


#: ``POST /api/v1/me/devices``: register a push token (or a browser subscription) for the caller.
DeviceRequest = ApnsDevice | FcmDevice | WebPushDevice


class DeviceUpdate(Struct, forbid_unknown_fields=True):
    """``PUT /api/v1/me/devices/{token}``: change a device's name, app or active flag."""

    app_id: ShortText | None = None
    name: ShortText | None = None
    active: bool | None = None


class ListQuery(Struct):
    """Query of ``GET /api/v1/me/notifications``: page numbers or a ``before`` seq cursor.

    Unknown query keys (cache busters, DRF's ``format``) are ignored.
    """

    page: Annotated[int, Meta(ge=1, le=MAX_PAGE)] = 1
    page_size: Annotated[int, Meta(ge=1, le=MAX_PAGE_SIZE)] = DEFAULT_PAGE_SIZE
    #: ``true`` or ``false`` (any case); absent means both. Anything else is a 400.
    is_read: Annotated[str, Meta(pattern=whole("^(?i:true|false)$"))] | msgspec.UnsetType = (
        msgspec.UNSET)
    before: Annotated[int, Meta(ge=1, le=MAX_INT)] | msgspec.UnsetType = msgspec.UNSET

    @property
    def cursor(self) -> int | None:
        """The ``before`` seq, or None when paging by page number."""
        return None if self.before is msgspec.UNSET else self.before

    @property
    def read_filter(self) -> bool | None:
        """The ``is_read`` filter: True, False or None (no filter); raises ValidationError."""
        if self.is_read is msgspec.UNSET:
            return None
        flag = {"true": True, "false": False}.get(self.is_read.lower())
        if flag is None:
            raise ValidationError("is_read is true or false (leave it out for both)")
        return flag


class TokenRequest(Struct, forbid_unknown_fields=True):
    """``POST /api/v1/tokens`` (producer): mint a user token, when the server signs tokens."""

    user: UserIdText
    ttl: Annotated[int, Meta(ge=1, le=30 * 24 * 3600)] = 3600


#: ``push.extra`` keys the payloads carry themselves, and FCM's reserved data keys (FCM
#: refuses a message holding one): a publish naming one is refused.
RESERVED_EXTRA_KEYS = frozenset({"uid", "seq", "type", "data", "aps", "from", "message_type"})
RESERVED_EXTRA_PREFIXES = ("google", "gcm")


def reserved_extra_key(key: str) -> bool:
    return key in RESERVED_EXTRA_KEYS or key.lower().startswith(RESERVED_EXTRA_PREFIXES)


def check_publish(req: PublishRequest) -> list[str]:
    """Limits a schema cannot state; returns the recipients as distinct text ids, in order given."""
    extra = req.push.extra if req.push is not None else None
    size = len(msgspec.json.encode([req.data, req.changed_data, req.custom_info, extra]))
    if size > MAX_PAYLOAD_BYTES:
        raise errors.DATA_TOO_LARGE.error(
            f"data, changed_data, custom_info and push.extra together are {size} bytes; "
            f"the limit is {MAX_PAYLOAD_BYTES}",
        )
    bad = next((k for k in extra or () if reserved_extra_key(k)), None)
    if bad is not None:
        raise errors.RESERVED_EXTRA_KEY.error(
            f"push.extra may not hold the key {bad!r}: uid, seq, type, data and aps are the"
            " payload's own, and from, message_type and keys starting with google or gcm are"
            " reserved by FCM")
    if req.push is not None and req.push.when == "unread_after" and req.push.after is None:
        raise ValidationError("push.after (seconds) is required when push.when is 'unread_after'")
    if not req.persist and req.push is not None and req.push.when == "unread_after":
        raise ValidationError(
            "push.when 'unread_after' needs a stored notification (persist: true)")
    if not req.persist and req.idempotency_key is not None:
        raise ValidationError("idempotency_key needs a stored notification (persist: true)")
    return list(dict.fromkeys(user_ids(req.recipients)))
