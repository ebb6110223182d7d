"""The console's send to a type's subscribers takes the publish's own content fields.

``TypeSend`` repeats ``PublishRequest``'s content and push fields (inheriting them would
reorder the publish's encoding, which its idempotency hashes are made of): a field added to
one must be added to the other, with the same type and default.
"""

from __future__ import annotations

import msgspec

from tidings.core.admin_schemas import TypeSend, type_publish
from tidings.core.requests import PublishRequest

#: What a publish has that a send to a type's subscribers sets itself or refuses.
PUBLISH_ONLY = {"recipients", "type", "idempotency_key", "delay", "persist"}
SEND_ONLY = {"after"}


def _fields(kind: type) -> dict[str, tuple[object, object]]:
    return {f.name: (f.type, f.default) for f in msgspec.inspect.type_info(kind).fields}


def test_a_type_send_has_exactly_the_publish_content_fields():
    send, publish = _fields(TypeSend), _fields(PublishRequest)
    assert {k: v for k, v in send.items() if k not in SEND_ONLY} == {
        k: v for k, v in publish.items() if k not in PUBLISH_ONLY}


def test_a_type_send_becomes_a_typed_publish_to_the_page():
    send = TypeSend(message="m", title="t", data={"a": 1}, after="alice")
    req = type_publish(send, "comment", ["bob", "carol"])
    assert (req.recipients, req.type, req.message, req.title, req.data) == (
        ["bob", "carol"], "comment", "m", "t", {"a": 1})
