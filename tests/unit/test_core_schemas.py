"""Request schemas and limits: pure, no event loop."""

import uuid

import pytest

from tidings.core.errors import TooLarge, ValidationError
from tidings.core.schemas import (
    MAX_BODY_BYTES,
    MAX_PAYLOAD_BYTES,
    MAX_RECIPIENTS,
    MAX_UIDS,
    ListQuery,
    PatchRequest,
    PublishRequest,
    check_device_token,
    check_publish,
    convert_query,
    decode_body,
)


def test_publish_accepts_contract_fields_and_int_ids():
    req = decode_body(
        b'{"recipients": [1, "bob", 1], "message": "hi", "type": "t", "data": {"a": 1},'
        b' "push": {"when": "unread_after", "after": 30, "badge": 2}, "persist": true}',
        PublishRequest,
    )
    assert check_publish(req) == ["1", "bob"]
    assert req.push is not None and req.push.after == 30


@pytest.mark.parametrize(("body", "fragment"), [
    (b"{", "malformed JSON"),
    (b"", "empty"),
    (b"[]", "Expected 'object'"),
    (b'{"recipients": [], "message": "x"}', "length >= 1"),
    (b'{"recipients": ["a"], "message": ""}', "length >= 1"),
    (b'{"recipients": ["a"], "message": 5}', "Expected 'str'"),
    (b'{"recipients": ["a"], "message": "x", "bogus": 1}', "unknown field 'bogus'"),
    (b'{"recipients": ["a"], "message": "x", "push": {"when": "sometimes"}}', "Invalid enum"),
    (b'{"recipients": [-1], "message": "x"}', ">= 0"),
    (b'{"recipients": ["a"], "message": "x\\u0000y"}', "NUL"),
    (b'{"recipients": ["a"], "message": "x", "data": {"k": ["\\u0000"]}}', "NUL"),
    (b'{"recipients": ["a"], "message": "x", "data": {"\\u0000": 1}}', "NUL"),
])
def test_publish_rejects_bad_bodies(body, fragment):
    with pytest.raises(ValidationError) as exc:
        decode_body(body, PublishRequest)
    assert fragment in exc.value.message


def test_escaped_backslash_before_u0000_is_text_not_nul():
    req = decode_body(b'{"recipients": ["a"], "message": "see \\\\u0000"}', PublishRequest)
    assert req.message == "see \\u0000"


def test_too_many_recipients():
    body = ('{"recipients": [%s], "message": "x"}'
            % ",".join(f'"u{i}"' for i in range(MAX_RECIPIENTS + 1))).encode()
    with pytest.raises(ValidationError, match="length <= 10000"):
        decode_body(body, PublishRequest)


def test_body_and_payload_size_caps():
    with pytest.raises(TooLarge):
        decode_body(b" " * (MAX_BODY_BYTES + 1), PublishRequest)
    req = decode_body(
        b'{"recipients": ["a"], "message": "x", "data": {"k": "%s"}}'
        % (b"y" * MAX_PAYLOAD_BYTES), PublishRequest)
    with pytest.raises(TooLarge) as exc:
        check_publish(req)
    assert exc.value.code == "data_too_large"


@pytest.mark.parametrize("body", [
    b'{"recipients": ["a"], "message": "x", "push": {"when": "unread_after"}}',
    b'{"recipients": ["a"], "message": "x", "persist": false, "idempotency_key": "k"}',
    b'{"recipients": ["a\\u0000"], "message": "x"}',
])
def test_publish_cross_field_rules(body):
    with pytest.raises(ValidationError):
        check_publish(decode_body(body, PublishRequest))


def test_patch_uids_are_uuids_and_bounded():
    uid = uuid.uuid4()
    req = decode_body(b'{"action_choice": "MARK_AS_READ", "notification_uids": ["%s"]}'
                      % str(uid).encode(), PatchRequest)
    assert req.notification_uids == [uid]
    with pytest.raises(ValidationError, match="Invalid UUID"):
        decode_body(b'{"action_choice": "MARK_AS_READ", "notification_uids": ["nope"]}',
                    PatchRequest)
    with pytest.raises(ValidationError, match="Invalid enum"):
        decode_body(b'{"action_choice": "DELETE_EVERYTHING"}', PatchRequest)
    many = ",".join(f'"{uuid.uuid4()}"' for _ in range(MAX_UIDS + 1))
    with pytest.raises(ValidationError, match="length <= 1000"):
        decode_body(f'{{"action_choice": "MARK_AS_READ", "notification_uids": [{many}]}}'
                    .encode(), PatchRequest)


def test_list_query_converts_strings_and_bounds():
    q = convert_query({"page": "2", "page_size": "5", "is_read": "false", "_": "1"}, ListQuery)
    assert (q.page, q.page_size, q.is_read, q.before) == (2, 5, False, None)
    for bad in ({"page": "0"}, {"page_size": "101"}, {"is_read": "maybe"}, {"before": "x"}):
        with pytest.raises(ValidationError):
            convert_query(bad, ListQuery)


def test_device_token_formats():
    check_device_token("apns", "ab" * 32)
    check_device_token("fcm", "dGVzdA:APA91b" + "x" * 100)
    for platform, token in (("apns", "xyz"), ("apns", "a" * 63), ("fcm", "short"),
                            ("fcm", "has spaces in it and is long enough")):
        with pytest.raises(ValidationError):
            check_device_token(platform, token)
