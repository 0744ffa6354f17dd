"""Editing modem records field by field, validated (the CLI and the admin web share this)."""

from __future__ import annotations

import re
from typing import Any, Callable

from ..msisdn import normalize
from .db import db
from .models import Modem, SmsSettings
from .sealed import clear_moved
from .settings import SettingError, bump_generation, check, convert

#: The spec's APN table for Indonesian operators, offered as presets by the admin web: (APN, username, password, dial number).
APN_PRESETS: dict[str, tuple[str, str, str, str]] = {
    "Telkomsel": ("internet", "", "", "*99#"),
    "XL": ("internet", "", "", "*99#"),
    "Three": ("3data", "3data", "3data", "*99#"),
    "Smartfren": ("smart", "smart", "smart", "#777"),
    "Indosat Ooredoo": ("indosatgprs", "", "", "*99#"),
    "Axis": ("axis", "axis", "123456", "*99#"),
}

BAUD_RATES = (1200, 2400, 4800, 9600, 19200, 38400, 57600, 115200, 230400, 460800, 921600)

#: Read from the modem by the modem component; not for people to set.
IDENTITY = frozenset({"manufacturer", "model", "revision", "imei", "imsi", "operator", "msisdn", "sms_center"})
INTERNAL = frozenset({"id", "name", "created_at", "updated_at"}) | IDENTITY


def _one_of(*allowed: Any) -> Callable[[Any], None]:
    def check_(value: Any) -> None:
        if value not in allowed:
            raise SettingError(f"must be one of {', '.join(map(str, allowed))}")

    return check_


def _matches(pattern: str, what: str) -> Callable[[str], None]:
    def check_(value: str) -> None:
        if not re.fullmatch(pattern, value):
            raise SettingError(f"must be {what}")

    return check_


def _init(value: str) -> None:
    # The same rule the dial-up chat script needs (otppi.modem.internet): no ' or \\ inside.
    if value and (not re.fullmatch(r"AT[ -~]{0,120}", value) or "'" in value or "\\" in value):
        raise SettingError("must be empty or one AT command without ' or \\")


VALIDATORS: dict[str, Callable[[Any], None]] = {
    "port": _matches(r"/[A-Za-z0-9._:/+-]{1,200}", "a device path such as /dev/ttyUSB0"),
    "sim_pin": _matches(r"(|[0-9]{4,8})", "empty or 4 to 8 digits"),
    "baud_rate": _one_of(*BAUD_RATES),
    "parity": _one_of("N", "E", "O", "M", "S"),
    "start_bits": _one_of(1),
    "data_bits": _one_of(5, 6, 7, 8),
    "stop_bits": _one_of(1.0, 1.5, 2.0),
    "apn": _matches(r"[A-Za-z0-9._-]{0,100}", "letters, digits, '.', '_' or '-'"),
    "apn_username": _matches(r"[ !#-\[\]-~]{0,64}", "at most 64 printable characters without \" or \\"),
    "apn_password": _matches(r"[ !#-\[\]-~]{0,64}", "at most 64 printable characters without \" or \\"),
    "dial_number": _matches(r"[0-9*#]{1,20}", "digits, * and #"),
    "dial_command": _matches(r"AT[A-Z+&]{1,10}", "an AT dial command such as ATD"),
    **{f"init_dial_{i}": _init for i in range(1, 6)},
}


def parse_prefixes(text: str, country_code: str) -> str:
    """"0871, 62872" → "62871,62872": the seed stores prefixes as MSISDN."""
    out = []
    for item in (part.strip() for part in text.split(",")):
        if not item:
            continue
        if not item.lstrip("+").isdigit() or len(item) > 15:
            raise SettingError(f"prefix {item!r} must be digits")
        out.append(normalize(item, country_code) if len(item) >= 3 else item.lstrip("+"))
    return ",".join(dict.fromkeys(out))


def parse_field(name: str, text: str) -> Any:
    field = Modem._meta.fields.get(name)
    if field is None or name in INTERNAL:
        editable = sorted(set(Modem._meta.fields) - INTERNAL)
        raise SettingError(f"{name!r} is not an editable modem field (one of: {', '.join(editable)})")
    if name == "prefixes":
        return parse_prefixes(text, SmsSettings.load().country_code)
    if name == "parity":
        text = text.strip().upper()[:1]
    return check(VALIDATORS, name, convert(field, name, text))


def update(modem: str, values: dict[str, Any]) -> list[str]:
    """Save parsed *values* of one modem as one change; the secrets it cleared (see ``sealed.clear_moved``).

    Moving a modem to another port clears its SIM PIN and APN password, and
    another APN its APN password, unless the same change gives them again.
    """
    values = dict(values)
    with db.atomic():
        cleared = clear_moved(Modem, Modem.name == modem, values)
        if not values or not Modem.update(**values).where(Modem.name == modem).execute():
            if not Modem.select().where(Modem.name == modem).exists():
                raise SettingError(f"no modem named {modem!r}")
        bump_generation()
    return cleared


def set_field(modem: str, name: str, text: str) -> Any:
    value = parse_field(name, text)
    update(modem, {name: value})
    return value
