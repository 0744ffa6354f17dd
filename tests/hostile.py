"""Random and hostile request bodies, for the property tests that drive every ingress for real.

A body is bytes as an ingress receives them: JSON with lone surrogate escapes
in any string (values, keys, ``callback_topic``, ``command``), raw UTF-8
surrogates and other bytes that are not UTF-8, NUL and control characters,
deep nesting, bodies over 64 KiB, numbers JSON has no room for, and the
near-valid requests that reach the handler's deeper answers.
"""

from __future__ import annotations

import json
from typing import Any

from hypothesis import strategies as st

from otppi.contract import COMMANDS, MAX_BODY

from .test_property import FIELDS, VALID, json_values, near_valid, plausible_values

LONE_SURROGATE = st.characters(categories=["Cs"])


@st.composite
def with_lone_surrogate(draw, text: st.SearchStrategy[str] = st.text(max_size=12)) -> str:
    value = draw(text)
    at = draw(st.integers(0, len(value)))
    return value[:at] + draw(LONE_SURROGATE) + value[at:]


ODD_TEXT = st.sampled_from(["\x00", "a\x00b", "\x1b[2J", "\u202e", "\ufeff", "\uffff", "\U0010ffff", "%s%s",
                            "0" * 300, "+62" + "8" * 40, "a@b", "*#", " \t\r\n"])
hostile_text = st.one_of(st.text(max_size=20), with_lone_surrogate(), ODD_TEXT)
hostile_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False, allow_infinity=False) | hostile_text,
    lambda children: st.lists(children, max_size=3) | st.dictionaries(hostile_text, children, max_size=3),
    max_leaves=8,
)


@st.composite
def hostile_request(draw) -> dict[str, Any]:
    """A request object: a valid one with one thing made hostile, a near-valid one, or a random one."""
    base = draw(st.sampled_from(["valid", "valid", "valid", "near-valid", "random"]))
    if base == "valid":
        command = draw(st.sampled_from(sorted(VALID)))
        obj = {"command": command, "data": {**VALID[command], "id": draw(st.uuids()).hex}}
    elif base == "near-valid":
        obj = draw(near_valid())
    else:
        obj = {"command": draw(st.sampled_from(sorted(COMMANDS))),
               "data": draw(st.dictionaries(st.sampled_from(FIELDS), plausible_values | hostile_text, max_size=6))}
    where = draw(st.sampled_from(["value", "value", "value", "key", "command", "callback", "nested", "none"]))
    lone = draw(with_lone_surrogate())
    data = obj["data"]
    strings = sorted(k for k, v in data.items() if isinstance(v, str))
    if where == "value" and strings:
        data[draw(st.sampled_from(strings))] = draw(st.sampled_from(["prefix ", ""])) + lone
    elif where == "key":
        data[lone] = draw(hostile_values)
    elif where == "command":
        obj["command"] = lone
    elif where == "callback":
        obj["callback_topic"] = lone
    elif where == "nested":
        data[draw(st.sampled_from(FIELDS + ["extra"]))] = draw(hostile_values)
    return obj


DEEP = [b"[" * 100_000, b"[" * 5_000 + b"]" * 5_000, b'{"a":' * 20_000 + b"1" + b"}" * 20_000,
        b'{"command": "echo", "data": ' + b"[" * 3_000 + b"]" * 3_000 + b"}"]
OVERSIZE = [b'{"command": "echo", "data": {"x": "' + b"a" * (MAX_BODY + 10) + b'"}}', b" " * (MAX_BODY + 1)]
ODD_BYTES = [b"", b"\x00", b'{"command": "echo"}\x00', b'{"command": "echo", "data": {"x": "\x00"}}',
             b"\xef\xbb\xbf" + b'{"command": "echo"}', '{"command": "echo"}'.encode("utf-16"),
             b'{"command": "echo", "data": {"x": "\xed\xa0\x80"}}', b'{"command": "echo", "data": {"x": "\xc0\x80"}}',
             b'{"command": "echo", "data": {"x": NaN}}', b'{"command": "echo", "data": {"x": 1e999}}',
             b'{"command": "echo", "data": {"x": ' + b"9" * 5000 + b"}}",
             b'{"command": "echo", "command": "echo"}', b'{"command": "echo",,}', b'{"command": "echo",}']


@st.composite
def hostile_body(draw, callback: str | None = None) -> bytes:
    """Bytes for an ingress; structured ones name *callback* as their ``callback_topic`` (unless hostile)."""
    kind = draw(st.sampled_from(["request", "request", "request", "raw-surrogate", "value", "bytes", "fixed"]))
    if kind in ("request", "raw-surrogate"):
        obj = draw(hostile_request())
        if callback is not None and "callback_topic" not in obj:
            obj["callback_topic"] = callback
        if kind == "raw-surrogate":  # the surrogate as UTF-8 bytes, which is not UTF-8
            return json.dumps(obj, ensure_ascii=False).encode("utf-8", "surrogatepass")
        return json.dumps(obj).encode()  # ensure_ascii: "\ud800" escapes
    if kind == "value":
        return json.dumps(draw(json_values)).encode()
    if kind == "bytes":
        return draw(st.binary(max_size=200))
    return draw(st.sampled_from(DEEP + OVERSIZE + ODD_BYTES))


def batches(callback: str | None = None) -> st.SearchStrategy[list[bytes]]:
    return st.lists(hostile_body(callback), min_size=1, max_size=4)
