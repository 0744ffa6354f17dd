"""The one request contract: bytes from any ingress → a validated :class:`Request`.

REST and every broker feeder call :func:`parse` and hand the result to the same
handler, so a request means the same thing whichever way it came. Anything that
does not fit raises :class:`ContractError` (code 1300) whose message names the
bad field.
"""

from __future__ import annotations

import json
import math
import re
from dataclasses import dataclass, field
from typing import Any, Callable

from . import codes
from .msisdn import looks_like_phone

MAX_BODY = 64 * 1024
MAX_MESSAGE = 1600  # ten concatenated GSM 7-bit parts and then some
MAX_FIELD = 255

#: Seed names first, then the original implementation's aliases.
COMMANDS: dict[str, str] = {
    "create-otp": "create-otp",
    "request-otp": "create-otp",
    "validate-otp": "validate-otp",
    "verify-otp": "validate-otp",
    "send-sms": "send-sms",
    "send-email": "send-email",
    "send-mail": "send-email",
    "block-msisdn": "block-msisdn",
    "unblock-msisdn": "unblock-msisdn",
    "request-ussd": "request-ussd",
    "get-modem-list": "get-modem-list",
    "echo": "echo",
}

_EMAIL = re.compile(r"[^@\s]{1,64}@[A-Za-z0-9](?:[A-Za-z0-9-]{0,62}[A-Za-z0-9])?(?:\.[A-Za-z0-9](?:[A-Za-z0-9-]{0,62}[A-Za-z0-9])?)+")
_PHONE = re.compile(r"\+?[0-9][0-9 ().-]{1,30}")
_CONTROL = re.compile(r"[\x00-\x1f\x7f]")
_TEXT_CONTROL = re.compile(r"[\x00-\x08\x0b\x0c\x0e-\x1f\x7f]")  # text may hold \t \n \r
# JSON's "\ud800" escapes decode to lone UTF-16 surrogates, which no UTF-8 encoder takes: sealing,
# the OTP MAC, SQLite and every log line would raise on them (RFC 8259 §8.2 leaves them undefined).
_SURROGATE = re.compile("[\ud800-\udfff]")


class ContractError(Exception):
    """A request that cannot be taken: always answered with 1300."""

    code = codes.MALFORMED

    def __init__(self, message: str, command: str | None = None):
        super().__init__(message)
        self.message = message
        self.command = command


@dataclass(frozen=True)
class Request:
    command: str  # canonical name
    name: str  # the name as sent (an alias stays an alias in the answer)
    data: dict[str, Any]
    callback_topic: str | None = None
    extra: dict[str, Any] = field(default_factory=dict)


# ---------------------------------------------------------------- JSON, leniently


def _drop_trailing_commas(text: str) -> str:
    """Remove a comma that stands right before ``}`` or ``]`` outside strings.

    The seed's examples put a comma before ``}`` and its parser took it, so
    clients copied from the README send it. Nothing else that is not JSON is
    accepted.
    """
    out: list[str] = []
    in_string = escaped = False
    i, n = 0, len(text)
    while i < n:
        c = text[i]
        if in_string:
            out.append(c)
            if escaped:
                escaped = False
            elif c == "\\":
                escaped = True
            elif c == '"':
                in_string = False
        elif c == '"':
            in_string = True
            out.append(c)
        elif c == ",":
            j = i + 1
            while j < n and text[j] in " \t\r\n":
                j += 1
            if j >= n or text[j] not in "}]":
                out.append(c)
        else:
            out.append(c)
        i += 1
    return "".join(out)


def _no_duplicates(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    obj: dict[str, Any] = {}
    for key, value in pairs:
        if key in obj:
            raise ContractError(f"duplicate key {key!r}")
        obj[key] = value
    return obj


def _finite(text: str) -> float:
    value = float(text)
    if not math.isfinite(value):
        raise ContractError("numbers must be finite")
    return value


def _reject_constant(name: str) -> Any:
    raise ContractError(f"{name} is not JSON")


def load_json(body: bytes | str) -> Any:
    if len(body) > MAX_BODY:
        raise ContractError(f"request body is over {MAX_BODY // 1024} KiB")
    if isinstance(body, bytes):
        try:
            body = body.decode("utf-8-sig")
        except UnicodeDecodeError:
            raise ContractError("request body is not UTF-8") from None
    try:
        return json.loads(
            _drop_trailing_commas(body),
            object_pairs_hook=_no_duplicates,
            parse_float=_finite,
            parse_constant=_reject_constant,
        )
    except ContractError:
        raise
    except RecursionError:
        raise ContractError("request body is nested too deeply") from None
    except ValueError as exc:  # JSONDecodeError and oversize integers
        raise ContractError(f"request body is not valid JSON: {exc}") from None


def _unencodable(obj: dict[str, Any]) -> str | None:
    """What names the first key or string of *obj* holding a lone surrogate, or None when none does.

    A string is named by its path (``data.message``, ``data.x[2]``); a key by the object that holds
    it (``data has a key that``), since the key itself cannot be written into a UTF-8 answer.
    Iterative, so a deeply nested request cannot exhaust the stack here.
    """
    stack: list[tuple[str, Any]] = [("", obj)]
    while stack:
        where, value = stack.pop()
        if isinstance(value, str):
            if _SURROGATE.search(value):
                return where
        elif isinstance(value, dict):
            for key, item in value.items():
                if _SURROGATE.search(key):
                    return f"{where or 'the request'} has a key that"
                stack.append((f"{where}.{key[:40]}" if where else key[:40], item))
        elif isinstance(value, list):
            stack.extend((f"{where}[{i}]", item) for i, item in enumerate(value))
    return None


# ---------------------------------------------------------------- field checks


def _string(name: str, value: Any, *, limit: int = MAX_FIELD, text: bool = False) -> str:
    if not isinstance(value, str):
        raise ContractError(f"data.{name} must be a string")
    if len(value) > limit:
        raise ContractError(f"data.{name} is longer than {limit} characters")
    if (_TEXT_CONTROL if text else _CONTROL).search(value):
        raise ContractError(f"data.{name} must not contain control characters")
    return value


def _key(name: str, value: Any) -> str:
    """An idempotency key (``id``, ``reference``): a non-empty string, or an integer."""
    if isinstance(value, bool):
        raise ContractError(f"data.{name} must be a string or an integer")
    if isinstance(value, int):
        value = str(value)
    value = _string(name, value, limit=128)
    if not value.strip():
        raise ContractError(f"data.{name} must not be empty")
    return value


def _time(name: str, value: Any) -> int | float:
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise ContractError(f"data.{name} must be a number of Unix seconds")
    if not 0 <= value < 1e11:
        raise ContractError(f"data.{name} is out of range")
    return value


def _phone(name: str, value: Any) -> str:
    value = _string(name, value, limit=32).strip()
    if not _PHONE.fullmatch(value) or not looks_like_phone(value):
        raise ContractError(f"data.{name} must be a phone number (3 to 20 digits)")
    return value


def _email(name: str, value: Any) -> str:
    value = _string(name, value, limit=254).strip()
    if not _EMAIL.fullmatch(value):
        raise ContractError(f"data.{name} must be an email address")
    return value


def _phone_or_email(name: str, value: Any) -> str:
    if isinstance(value, str) and "@" in value:
        return _email(name, value)
    return _phone(name, value)


def _otp(name: str, value: Any) -> str:
    if isinstance(value, int) and not isinstance(value, bool):
        value = str(value)
    value = _string(name, value, limit=16).strip()
    if not value.isdigit() or not value.isascii():
        raise ContractError(f"data.{name} must be digits")
    return value


def _message(name: str, value: Any) -> str:
    value = _string(name, value, limit=MAX_MESSAGE, text=True)
    if not value.strip():
        raise ContractError(f"data.{name} must not be empty")
    return value


def _otp_template(name: str, value: Any) -> str:
    value = _message(name, value)
    if value.count("%s") != 1:
        raise ContractError(f"data.{name} must contain exactly one %s where the code goes")
    return value


def _param(name: str, value: Any) -> str:
    if isinstance(value, (int, float)) and not isinstance(value, bool):
        raise ContractError(f"data.{name} must be a string")
    return _string(name, value)


def _plain(name: str, value: Any) -> str:
    return _string(name, value)


def _ussd(name: str, value: Any) -> str:
    value = _string(name, value, limit=64).strip()
    if not re.fullmatch(r"[0-9*#+]{1,64}", value):
        raise ContractError(f"data.{name} must be a USSD code such as *123#")
    return value


Check = Callable[[str, Any], Any]
PARAMS = {f"param{i}": (_param, False) for i in range(1, 5)}
COMMON = {"date_time": (_time, False)}

SCHEMAS: dict[str, dict[str, tuple[Check, bool]]] = {
    "create-otp": {
        **COMMON,
        "expiration": (_time, False),
        "receiver": (_phone_or_email, True),
        "message": (_otp_template, False),
        "subject": (_plain, False),
        "reference": (_key, True),
        **PARAMS,
    },
    "validate-otp": {
        **COMMON,
        "receiver": (_phone_or_email, True),
        "otp": (_otp, True),
        "reference": (_key, True),
        **PARAMS,
    },
    "send-sms": {
        **COMMON,
        "expiration": (_time, False),
        "id": (_key, False),
        "receiver": (_phone, True),
        "message": (_message, True),
    },
    "send-email": {
        **COMMON,
        "expiration": (_time, False),
        "id": (_key, False),
        "receiver": (_email, True),
        "subject": (_plain, False),
        "message": (_message, True),
    },
    "block-msisdn": {**COMMON, "receiver": (_phone, True)},
    "unblock-msisdn": {**COMMON, "receiver": (_phone, True)},
    "request-ussd": {**COMMON, "modem": (_plain, True), "code": (_ussd, True)},
    "get-modem-list": {**COMMON},
    "echo": {},
}


def callback_topic_ok(topic: str) -> bool:
    """A topic an answer can be published to: 1..255 characters of UTF-8 text, no control characters.

    MQTT forbids U+0000 in topic names and every broker takes a name as UTF-8.
    """
    return 0 < len(topic) <= MAX_FIELD and not _CONTROL.search(topic) and not _SURROGATE.search(topic)


def validate(obj: Any) -> Request:
    if not isinstance(obj, dict):
        raise ContractError("request must be a JSON object")
    where = _unencodable(obj)
    if where is not None:
        name = obj.get("command")
        raise ContractError(f"{where} is not valid UTF-8 text: it holds a lone surrogate "
                            "(a \\ud800-\\udfff escape without its pair)",
                            name if isinstance(name, str) and name in COMMANDS else None)
    name = obj.get("command")
    if not isinstance(name, str):
        raise ContractError("command is missing or not a string")
    command = COMMANDS.get(name)
    if command is None:
        raise ContractError(f"unknown command {name[:40]!r}")
    data = obj.get("data", {})
    if not isinstance(data, dict):
        raise ContractError("data must be a JSON object", name)
    callback = obj.get("callback_topic")
    if callback is not None and not (isinstance(callback, str) and 0 < len(callback) <= MAX_FIELD):
        raise ContractError("callback_topic must be a non-empty string", name)
    if callback is not None and not callback_topic_ok(callback):
        raise ContractError("callback_topic must not contain control characters", name)
    if command == "echo":
        return Request(command, name, dict(data), callback)
    data = dict(data)
    # The seed's table names the number "msisdn" for block and unblock; its examples say "receiver".
    if command in ("block-msisdn", "unblock-msisdn") and "receiver" not in data and "msisdn" in data:
        data["receiver"] = data.pop("msisdn")
    clean: dict[str, Any] = {}
    try:
        for fname, (check, required) in SCHEMAS[command].items():
            if fname not in data or data[fname] is None:
                if required:
                    raise ContractError(f"data.{fname} is required")
                continue
            clean[fname] = check(fname, data[fname])
    except ContractError as exc:
        exc.command = name
        raise
    return Request(command, name, clean, callback)


def parse(body: bytes | str) -> Request:
    return validate(load_json(body))


def command_of(body: bytes | str) -> str | None:
    """Best-effort command name of a request that failed to parse, for the answer."""
    try:
        obj = load_json(body)
    except ContractError:
        return None
    name = obj.get("command") if isinstance(obj, dict) else None
    return name[:40] if isinstance(name, str) and not _SURROGATE.search(name[:40]) else None
