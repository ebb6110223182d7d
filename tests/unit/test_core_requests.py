"""Request schemas and limits: pure, no event loop."""

import json
import re
import uuid

import orjson
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from tidings.api.openapi import document
from tidings.core.decoding import convert_query, decode_body
from tidings.core.errors import TooLarge, ValidationError
from tidings.core.ids import (
    USER_ID_RULE,
    check_device_token,
    is_device_token,
    user_id,
    user_ids,
)
from tidings.core.jsonvalues import MAX_DEPTH, MAX_INT, MIN_INT
from tidings.core.requests import (
    MAX_BODY_BYTES,
    MAX_PAYLOAD_BYTES,
    MAX_RECIPIENTS,
    MAX_UIDS,
    DetailPatch,
    DeviceRequest,
    FcmDevice,
    ListQuery,
    PatchRequest,
    PublishRequest,
    TokenRequest,
    check_publish,
    reserved_extra_key,
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
    q = convert_query({"page": "2", "page_size": "5", "is_read": "false", "_": "1"}.items(),
                      ListQuery)
    assert (q.page, q.page_size, q.read_filter, q.cursor) == (2, 5, False, None)
    assert convert_query([("is_read", "TRUE"), ("before", "7")], ListQuery).read_filter is True
    assert convert_query([("before", "7")], ListQuery).cursor == 7
    assert convert_query([("_", "1"), ("_", "2")], ListQuery).read_filter is None
    for bad in ({"page": "0"}, {"page_size": "101"}, {"is_read": "maybe"}, {"before": "x"},
                {"is_read": "null"}, {"before": "null"}, {"before": str(2**63)},
                {"page": "1000001"}):
        with pytest.raises(ValidationError):
            convert_query(bad.items(), ListQuery).read_filter  # noqa: B018
    with pytest.raises(ValidationError, match="more than once"):
        convert_query([("before", "5"), ("before", "9")], ListQuery)


def test_device_token_formats():
    check_device_token("apns", "ab" * 32)
    check_device_token("fcm", "dGVzdA:APA91b" + "x" * 100)
    for platform, token in (("apns", "xyz"), ("apns", "a" * 63), ("fcm", "short"),
                            ("fcm", "has spaces in it and is long enough"),
                            ("apns", "ab" * 32 + "\n"), ("fcm", "x" * 30 + "\n")):
        with pytest.raises(ValidationError):
            check_device_token(platform, token)
    assert is_device_token("ab" * 32) and is_device_token("fcm:" + "x" * 30)
    for path in ("\x00", "", "a b", "x" * 19, "ab" * 32 + "\n"):
        assert not is_device_token(path)


# Depth, number range and NUL: the limits of free-form JSON (tidings.core.jsonvalues).

def _nested(depth: int, leaf: bytes = b"1") -> bytes:
    return b"[" * depth + leaf + b"]" * depth


@pytest.mark.parametrize("field", [b'"data": {"k": %s}', b'"changed_data": %s',
                                   b'"custom_info": %s', b'"push": {"extra": {"k": %s}}'])
def test_nesting_beyond_the_limit_is_too_deep(field):
    body = b'{"recipients": ["a"], "message": "x", %s}'
    levels = MAX_DEPTH - 3  # the body, the field's object and the "k" object count too
    decode_body(body % (field % _nested(levels - 1)), PublishRequest)
    for depth in (MAX_DEPTH, 300, 1000, 100_000):
        with pytest.raises(ValidationError) as exc:
            decode_body(body % (field % _nested(depth)), PublishRequest)
        assert exc.value.code == "too_deep"


@pytest.mark.parametrize("number", [b"9223372036854775808", b"-9223372036854775809",
                                    b"1" + b"0" * 40, b"1e30", b"-1e19"])
def test_numbers_beyond_64_bits_are_refused(number):
    for body in (b'{"recipients": ["a"], "message": "x", "data": {"k": %s}}',
                 b'{"recipients": ["a"], "message": "x", "custom_info": [%s]}',
                 b'{"recipients": ["a"], "message": "x", "push": {"extra": {"k": %s}}}'):
        with pytest.raises(ValidationError) as exc:
            decode_body(body % number, PublishRequest)
        assert exc.value.code in ("number_out_of_range", "invalid_request")
    edge = decode_body(b'{"recipients": ["a"], "message": "x", "data": {"k": %d, "m": %d}}'
                       % (MAX_INT, MIN_INT), PublishRequest)
    assert edge.data == {"k": MAX_INT, "m": MIN_INT}


def test_push_extra_counts_in_the_content_limit():
    half = b"y" * (MAX_PAYLOAD_BYTES // 2)
    req = decode_body(b'{"recipients": ["a"], "message": "x", "data": {"k": "%s"},'
                      b' "push": {"extra": {"k": "%s"}}}' % (half, half), PublishRequest)
    with pytest.raises(TooLarge, match=r"push\.extra"):
        check_publish(req)


def test_whole_number_floats_are_integers():
    req = decode_body(b'{"user": "alice", "ttl": 600.0}', TokenRequest)
    assert req.ttl == 600 and isinstance(req.ttl, int)
    with pytest.raises(ValidationError):
        decode_body(b'{"user": "alice", "ttl": 600.5}', TokenRequest)


def test_one_user_id_rule():
    for bad in ("a\nb", "a\x00", "\x7f", "tab\there", "\x85", "", "u" * 256, "trailing\n"):
        with pytest.raises(ValidationError) as exc:
            user_id(bad)
        assert exc.value.code == "invalid_user_id" and exc.value.message == USER_ID_RULE
    assert user_id(42) == "42" and user_id("ünïcode and spaces") == "ünïcode and spaces"
    with pytest.raises(ValidationError):
        decode_body(rb'{"user": "a\u0001b"}', TokenRequest)


@settings(max_examples=300, deadline=None)
@given(st.lists(st.one_of(st.text(min_size=1, max_size=255),
                          st.integers(min_value=0, max_value=MAX_INT)), max_size=20))
def test_user_ids_in_one_scan_are_each_ones_rule(values):
    """One scan for all recipients answers as :func:`user_id` of each would."""
    try:
        expected = [user_id(v) for v in values]
    except ValidationError as exc:
        with pytest.raises(ValidationError) as got:
            user_ids(values)
        assert (got.value.code, got.value.message) == (exc.code, exc.message)
    else:
        assert user_ids(values) == expected


def test_a_recipient_breaking_the_rule_is_refused_wherever_it_stands():
    many = [f"user-{i}" for i in range(MAX_RECIPIENTS)]
    for bad in ("a\nb", "a\u0001", "\u007f", "trailing\n", "\u0085"):
        names = [*many[:5000], bad, *many[5001:]]
        req = decode_body(orjson.dumps({"recipients": names, "message": "x"}), PublishRequest)
        with pytest.raises(ValidationError) as exc:
            check_publish(req)
        assert exc.value.code == "invalid_user_id"


def test_a_large_body_is_walked_and_still_refuses_a_nul():
    names = ",".join(f'"user-{i}"' for i in range(2000))
    body = rb'{"recipients": [%s], "message": "x", "data": {"k": "a\u0000b"}}' % names.encode()
    assert len(body) > 2048
    with pytest.raises(ValidationError) as exc:
        decode_body(body, PublishRequest)
    assert exc.value.code == "nul_character"


def test_devices_per_platform_and_detail_patch():
    dev = decode_body(b'{"platform": "fcm", "token": "%s"}' % (b"x" * 30), DeviceRequest)
    assert isinstance(dev, FcmDevice) and dev.platform == "fcm" and dev.active
    with pytest.raises(ValidationError):
        decode_body(b'{"platform": "apns", "token": "%s"}' % (b"x" * 64), DeviceRequest)
    with pytest.raises(ValidationError):
        decode_body(b'{"is_read": false}', DetailPatch)


# Any JSON at all: a typed value or a ValidationError with a code, never another exception.

_json = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False, allow_infinity=False)
    | st.text(),
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(), inner, max_size=4),
    max_leaves=30,
)
_KINDS = [PublishRequest, PatchRequest, DetailPatch, DeviceRequest, TokenRequest]
_CODES = {"invalid_request", "invalid_json", "too_deep", "number_out_of_range", "nul_character"}


def _check_decode(body: bytes) -> None:
    for kind in _KINDS:
        try:
            decode_body(body, kind)
        except (ValidationError, TooLarge) as exc:
            assert exc.code in _CODES | {"payload_too_large"}, exc.code
            assert exc.message


@settings(max_examples=300, deadline=None)
@given(_json)
def test_any_json_value_decodes_or_is_a_coded_400(value):
    _check_decode(json.dumps(value).encode())


@settings(max_examples=200, deadline=None)
@given(st.fixed_dictionaries(
    {"recipients": st.lists(st.text() | st.integers(), min_size=1, max_size=3),
     "message": st.text(min_size=1)},
    optional={"data": _json, "changed_data": _json, "custom_info": _json,
              "push": st.fixed_dictionaries({}, optional={"extra": _json, "badge": _json})}))
def test_publish_shaped_json_decodes_or_is_a_coded_400(value):
    _check_decode(json.dumps(value).encode())


@settings(max_examples=200, deadline=None)
@given(st.binary(max_size=200) | st.integers(1, 3000).map(lambda n: b"[" * n))
def test_any_bytes_decode_or_are_a_coded_400(body):
    _check_decode(body)


@settings(max_examples=100, deadline=None)
@given(_json)
def test_a_decoded_publish_encodes_again(value):
    """What passes the decoder is what orjson and PostgreSQL take: no later 500."""
    body = json.dumps({"recipients": ["a"], "message": "x", "data": {"v": value}}).encode()
    try:
        req = decode_body(body, PublishRequest)
    except ValidationError:
        return
    assert orjson.loads(orjson.dumps(req.data)) == req.data


@given(st.one_of(st.text(max_size=12), st.sampled_from(
    ["from", "uid", "aps", "Google.x", "gcmx", "GCM", "message_type", "uids", "xgoogle"])))
def test_the_api_description_states_the_reserved_extra_keys_as_the_server_applies_them(key):
    extra = document()["components"]["schemas"]["PushOptions"]["properties"]["extra"]
    names = extra["anyOf"][0]["propertyNames"]["not"]["pattern"]
    assert bool(re.search(names, key)) == reserved_extra_key(key)
