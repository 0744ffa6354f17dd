"""The one request contract: what is accepted, and the 1300 answers for what is not."""

from __future__ import annotations

import json

import pytest

from otppi import codes
from otppi.contract import COMMANDS, MAX_BODY, ContractError, command_of, parse

from .spec_examples import EXAMPLES


@pytest.mark.parametrize("body", EXAMPLES, ids=lambda b: json.dumps(b[:40]))
def test_every_spec_example_is_accepted_verbatim(body: str) -> None:
    req = parse(body.encode())
    assert req.command in COMMANDS.values()
    assert req.data


def test_a_comma_before_closing_brace_is_accepted() -> None:
    req = parse(b'{"command": "block-msisdn", "data": {"receiver": "0812",},}')
    assert req.data == {"receiver": "0812"}


def test_a_comma_inside_a_string_is_kept() -> None:
    req = parse(b'{"command": "send-sms", "data": {"receiver": "0812", "message": "a ,}"}}')
    assert req.data["message"] == "a ,}"


@pytest.mark.parametrize(
    "body",
    [
        b"{'command': 'echo'}",  # single quotes
        b'{"command": "echo",, "data": {}}',  # double comma
        b'{"command": "echo" "data": {}}',  # missing comma
        b'{command: "echo"}',  # bare key
        b'{"command": "echo"} trailing',
        b"",
        b"   ",
        b'{"command": "echo", "data": NaN}',
        b'{"command": "echo", "data": {"x": Infinity}}',
        b'{"command": "echo", "data": {"x": 1e999}}',
        b'{"command": "echo", "command": "send-sms"}',  # duplicate key
        b"\xff\xfe{}",  # not UTF-8
        b"[" * 100_000 + b"]" * 100_000,
        b'{"command": "echo", "data": {"x": ' + b"9" * 5000 + b"}}",
    ],
)
def test_what_is_not_json_is_refused(body: bytes) -> None:
    with pytest.raises(ContractError) as err:
        parse(body)
    assert err.value.code == codes.MALFORMED


def test_oversize_body_is_refused_before_parsing() -> None:
    with pytest.raises(ContractError, match="64 KiB"):
        parse(b" " * (MAX_BODY + 1))


def test_a_bom_is_tolerated() -> None:
    assert parse('\ufeff{"command": "echo"}'.encode()).command == "echo"


@pytest.mark.parametrize("alias,canonical", [("request-otp", "create-otp"), ("verify-otp", "validate-otp"),
                                             ("send-mail", "send-email")])
def test_aliases_keep_their_name(alias: str, canonical: str) -> None:
    data = {"request-otp": {"receiver": "0812", "reference": "r"},
            "verify-otp": {"receiver": "0812", "reference": "r", "otp": "123456"},
            "send-mail": {"receiver": "a@b.co", "message": "hi"}}[alias]
    req = parse(json.dumps({"command": alias, "data": data}))
    assert (req.command, req.name) == (canonical, alias)


def _error(obj) -> str:
    with pytest.raises(ContractError) as err:
        parse(json.dumps(obj))
    return err.value.message


@pytest.mark.parametrize(
    "obj,field",
    [
        ({"command": "send-sms", "data": {"message": "hi"}}, "data.receiver"),
        ({"command": "send-sms", "data": {"receiver": "0812345", "message": 5}}, "data.message"),
        ({"command": "send-sms", "data": {"receiver": 812345, "message": "x"}}, "data.receiver"),
        ({"command": "send-sms", "data": {"receiver": "not a number", "message": "x"}}, "data.receiver"),
        ({"command": "block-msisdn", "data": {"receiver": "0" * 21}}, "data.receiver"),
        ({"command": "send-sms", "data": {"receiver": "0812345", "message": ""}}, "data.message"),
        ({"command": "send-sms", "data": {"receiver": "0812345", "message": "x" * 1601}}, "data.message"),
        ({"command": "send-sms", "data": {"receiver": "0812345", "message": "x", "id": True}}, "data.id"),
        ({"command": "send-sms", "data": {"receiver": "0812345", "message": "x", "id": ""}}, "data.id"),
        ({"command": "send-sms", "data": {"receiver": "0812345", "message": "x", "date_time": "now"}}, "data.date_time"),
        ({"command": "send-sms", "data": {"receiver": "0812345", "message": "x", "expiration": -1}}, "data.expiration"),
        ({"command": "send-email", "data": {"receiver": "0812345", "message": "x"}}, "data.receiver"),
        ({"command": "create-otp", "data": {"receiver": "0812345"}}, "data.reference"),
        ({"command": "create-otp", "data": {"receiver": "0812345", "reference": "r", "message": "no slot"}}, "data.message"),
        ({"command": "create-otp", "data": {"receiver": "0812345", "reference": "r", "message": "%s %s"}}, "data.message"),
        ({"command": "create-otp", "data": {"receiver": "0812345", "reference": "r", "param1": 100000}}, "data.param1"),
        ({"command": "validate-otp", "data": {"receiver": "0812345", "reference": "r", "otp": "12a456"}}, "data.otp"),
        ({"command": "validate-otp", "data": {"receiver": "0812345", "reference": "r"}}, "data.otp"),
        ({"command": "block-msisdn", "data": {}}, "data.receiver"),
        ({"command": "request-ussd", "data": {"modem": "m1", "code": "*123#; rm"}}, "data.code"),
        ({"command": "send-sms", "data": {"receiver": "0812\x00345", "message": "x"}}, "data.receiver"),
        ({"command": "send-sms", "data": {"receiver": "0812345", "message": "x\x1b[2J"}}, "data.message"),
        ({"command": "create-otp", "data": {"receiver": "0812345", "reference": "r\nx"}}, "data.reference"),
    ],
)
def test_a_bad_field_is_named(obj, field: str) -> None:
    assert _error(obj).startswith(field)


@pytest.mark.parametrize(
    "obj,text",
    [
        ([], "JSON object"),
        ({"data": {}}, "command"),
        ({"command": 5}, "command"),
        ({"command": "send-fax"}, "unknown command"),
        ({"command": "send-sms", "data": []}, "data must be"),
        ({"command": "echo", "callback_topic": ""}, "callback_topic"),
    ],
)
def test_shape_errors(obj, text: str) -> None:
    assert text in _error(obj)


def test_sql_looking_text_is_just_text() -> None:
    req = parse(json.dumps({"command": "send-sms", "data": {
        "receiver": "0812345", "message": "'; DROP TABLE sms_outbox; --", "id": "1' OR '1'='1"}}))
    assert req.data["message"] == "'; DROP TABLE sms_outbox; --"
    assert req.data["id"] == "1' OR '1'='1"


def test_block_accepts_the_tables_msisdn_name() -> None:
    req = parse(b'{"command": "block-msisdn", "data": {"msisdn": "08126666666"}}')
    assert req.data["receiver"] == "08126666666"


def test_integer_id_becomes_a_string_key() -> None:
    req = parse(b'{"command": "send-sms", "data": {"id": 123456, "receiver": "0812", "message": "m"}}')
    assert req.data["id"] == "123456"


# ---------------------------------------------------------------- text that is not UTF-8 (lone surrogates)

#: A valid request of each command, every string field of it a candidate for a lone surrogate.
SURROGATE_TARGETS = {
    "create-otp": {"receiver": "08126666666", "reference": "r1", "message": "Code %s", "subject": "s",
                   "param1": "p1", "param2": "p2", "param3": "p3", "param4": "p4"},
    "validate-otp": {"receiver": "08126666666", "reference": "r1", "otp": "123456", "param1": "p1"},
    "send-sms": {"receiver": "08126666666", "message": "hello", "id": "1"},
    "send-email": {"receiver": "a@b.co", "message": "hello", "id": "1", "subject": "s"},
    "block-msisdn": {"receiver": "08126666666"},
    "unblock-msisdn": {"msisdn": "08126666666"},
    "request-ussd": {"modem": "m", "code": "*123#"},
    "echo": {"anything": "goes", "nested": {"list": ["a", "b"]}},
}
LONE = ["\ud800", "\udfff", "\udc00x", "a\ud83d", "\ude00\ud83d"]  # high, low, reversed pair halves


def _with_lone_surrogate(value: str, lone: str) -> str:
    return value[:1] + lone + value[1:]


@pytest.mark.parametrize("lone", LONE, ids=ascii)
@pytest.mark.parametrize("command,field", [(c, f) for c, d in SURROGATE_TARGETS.items() for f in d])
def test_a_lone_surrogate_in_any_field_is_refused_naming_the_field(command: str, field: str, lone: str) -> None:
    data = dict(SURROGATE_TARGETS[command])
    if isinstance(data[field], str):
        data[field] = _with_lone_surrogate(data[field], lone)
        where = f"data.{field}"
    else:
        data[field] = {"inner": [1, lone]}
        where = f"data.{field}.inner[1]"
    body = json.dumps({"command": command, "data": data}).encode()  # ensure_ascii: "\\ud800" escapes
    assert b"\\ud" in body
    with pytest.raises(ContractError) as err:
        parse(body)
    assert err.value.code == codes.MALFORMED
    assert err.value.message.startswith(f"{where} ") and "surrogate" in err.value.message
    assert err.value.message.encode("utf-8")  # the answer itself is UTF-8
    assert err.value.command == command


@pytest.mark.parametrize(
    "obj,where",
    [
        ({"command": "echo", "callback_topic": "cb\ud800"}, "callback_topic"),
        ({"command": "echo\ud800"}, "command"),
        ({"command": "echo", "data": {"k\udc00": 1}}, "data"),  # a key
        ({"command": "send-sms", "data": {"receiver": "0812", "message": "m", "\ud800": "x"}}, "data"),
        ({"command": "echo", "\ud800": 1}, "the request"),  # a top-level key
        ({"command": "echo", "extra": ["\ud800"]}, "extra[0]"),
        ({"command": "echo", "data": {"a": {"b": {"c": [[["\udbff"]]]}}}}, "data.a.b.c[0][0][0]"),
    ],
    ids=ascii,
)
def test_a_lone_surrogate_anywhere_else_is_refused_naming_where(obj: dict, where: str) -> None:
    with pytest.raises(ContractError) as err:
        parse(json.dumps(obj).encode())
    assert err.value.message.startswith(f"{where} ") and "surrogate" in err.value.message
    assert err.value.message.encode("utf-8")


def test_a_surrogate_pair_is_one_character_and_accepted() -> None:
    req = parse(b'{"command": "send-sms", "data": {"receiver": "0812", "message": "smile \\ud83d\\ude00"}}')
    assert req.data["message"] == "smile \U0001f600"
    req.data["message"].encode("utf-8")


def test_a_lone_surrogate_in_a_str_body_is_refused_too() -> None:
    with pytest.raises(ContractError, match="data.message .*surrogate"):
        parse('{"command": "send-sms", "data": {"receiver": "0812", "message": "x\ud800"}}')


def test_utf8_encoded_surrogates_and_overlong_forms_are_not_utf8() -> None:
    for raw in (b"\xed\xa0\x80", b"\xc0\x80", b"\xf4\x90\x80\x80"):  # CESU surrogate, overlong NUL, > U+10FFFF
        with pytest.raises(ContractError, match="not UTF-8"):
            parse(b'{"command": "echo", "data": {"x": "' + raw + b'"}}')


def test_the_command_of_a_refused_request_is_never_a_lone_surrogate() -> None:
    assert command_of(json.dumps({"command": "echo\ud800"}).encode()) is None
    assert command_of(json.dumps({"command": "send-sms"}).encode()) == "send-sms"


def test_a_lone_surrogate_beside_a_command_of_the_wrong_type_is_still_a_1300() -> None:
    for command in ([], {}, 5, None):
        with pytest.raises(ContractError, match="surrogate"):
            parse(json.dumps({"command": command, "data": {"x": "\ud800"}}).encode())
