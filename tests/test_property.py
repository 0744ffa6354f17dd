"""Random input against the one contract and handler: only codes from the table ever come back."""

from __future__ import annotations

import json

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from otppi import codes
from otppi.contract import COMMANDS, ContractError, parse
from otppi.handler import Handler

json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False, allow_infinity=False) | st.text(),
    lambda children: st.lists(children, max_size=4) | st.dictionaries(st.text(max_size=12), children, max_size=4),
    max_leaves=12,
)

FIELDS = ["receiver", "message", "reference", "otp", "id", "date_time", "expiration", "param1", "param2",
          "param3", "param4", "subject", "modem", "code", "msisdn"]
plausible_values = (st.text(max_size=40) | st.integers() | st.floats(allow_nan=False) | st.booleans() | st.none()
                    | st.sampled_from(["08126666666", "+628126666666", "a@b.co", "%s", "Your OTP is %s", "*123#",
                                       "123456", "", " ", "\x00", "0" * 300]))
requests_ = st.fixed_dictionaries(
    {"command": st.sampled_from(sorted(COMMANDS)) | st.text(max_size=15)},
    optional={"data": st.dictionaries(st.sampled_from(FIELDS), plausible_values, max_size=8) | json_values,
              "callback_topic": st.text(max_size=5) | st.integers()},
)


VALID = {
    "create-otp": {"receiver": "08126666666", "reference": "r1", "message": "Code %s", "param1": "p"},
    "validate-otp": {"receiver": "08126666666", "reference": "r1", "otp": "123456"},
    "send-sms": {"receiver": "08126666666", "message": "hello", "id": "1"},
    "send-email": {"receiver": "a@b.co", "message": "hello", "id": "1"},
    "block-msisdn": {"receiver": "08126666666"},
    "unblock-msisdn": {"receiver": "08126666666"},
    "get-modem-list": {},
    "echo": {"x": 1},
}


@st.composite
def near_valid(draw):
    """A valid request with one field changed or dropped: reaches the handler's deeper answers."""
    command = draw(st.sampled_from(sorted(VALID)))
    data = dict(VALID[command])
    action = draw(st.sampled_from(["keep", "change", "drop"]))
    if action != "keep" and data:
        key = draw(st.sampled_from(sorted(data)))
        if action == "drop":
            del data[key]
        else:
            data[key] = draw(plausible_values)
    if draw(st.booleans()):
        data["reference"] = draw(st.sampled_from(["r1", "r2"]))
    return {"command": command, "data": data}


def answer(handler: Handler, body: bytes) -> str:
    try:
        req = parse(body)
    except ContractError as exc:
        assert exc.message
        return exc.code
    result = handler.handle(req, source="hypothesis")
    assert set(result) == {"command", "response_code", "message", "data"}
    json.dumps(result)  # always serialisable
    return result["response_code"]


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(requests_)
def test_structured_random_requests(handler: Handler, obj) -> None:
    assert answer(handler, json.dumps(obj).encode()) in codes.ALL


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(near_valid())
def test_near_valid_requests_reach_every_answer(handler: Handler, obj) -> None:
    assert answer(handler, json.dumps(obj).encode()) in codes.ALL


@settings(max_examples=200, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(json_values)
def test_any_json_value(handler: Handler, value) -> None:
    assert answer(handler, json.dumps(value).encode()) == codes.MALFORMED or isinstance(value, dict)


@settings(max_examples=200, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(st.binary(max_size=300))
def test_any_bytes(handler: Handler, raw: bytes) -> None:
    assert answer(handler, raw) in codes.ALL
