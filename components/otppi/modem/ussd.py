"""USSD strings in and out of AT+CUSD (TS 27.007 clause 7.15, TS 23.038 data coding).

Most modems take and give USSD text as it is (character set GSM). Huawei
sticks (E173, E3131, E3372 in serial mode) want the request as packed GSM
7-bit septets in hex and answer the same way.
"""

from __future__ import annotations

import re

from . import gsm7
from .errors import ModemError, UssdError

_CUSD = re.compile(r'^\s*(\d)\s*(?:,\s*"((?:[^"]|\n)*)"\s*(?:,\s*(\d+))?)?\s*$', re.S)
_HEX = re.compile(r"^(?:[0-9A-Fa-f]{2})+$")

STATUS = {
    "2": "the network ended the USSD session",
    "3": "another local client answered",
    "4": "the operator does not support this USSD code",
    "5": "the network did not answer in time",
}


def packs_ussd(manufacturer: str) -> bool:
    return manufacturer.strip().lower() == "huawei"


def encode_ussd_request(code: str, manufacturer: str) -> str:
    if not re.fullmatch(r"[0-9*#+]{1,64}", code):
        raise ValueError("a USSD code is digits, *, # and + (at most 64)")
    if not packs_ussd(manufacturer):
        return code
    septets = gsm7.encode_gsm7(code)
    return gsm7.pack_septets(septets).hex().upper()


def _is_ucs2(dcs: int) -> bool:
    # TS 23.038 clause 5: group 0100xxxx/01xx uses bits 3..2 for the alphabet; 0x48 and 0x11 are UCS2.
    return dcs == 0x11 or (dcs & 0xC0 == 0x40 and dcs & 0x0C == 0x08) or dcs == 0x48


def decode_ussd(value: str, manufacturer: str = "") -> tuple[str, bool]:
    """(reply text, the session waits for an answer) from the text after ``+CUSD:``."""
    match = _CUSD.match(value)
    if match is None:
        raise ModemError(f"unreadable USSD answer {value[:80]!r}")
    status, text, dcs_text = match.group(1), match.group(2) or "", match.group(3)
    if status in STATUS and not text:
        raise UssdError(STATUS[status], status)
    dcs = int(dcs_text) if dcs_text else 15
    if _HEX.match(text) and _is_ucs2(dcs):
        text = bytes.fromhex(text).decode("utf-16-be", errors="replace")
    elif _HEX.match(text) and packs_ussd(manufacturer):
        raw = bytes.fromhex(text)
        text = gsm7.decode_gsm7(gsm7.unpack_septets(raw, len(raw) * 8 // 7)).rstrip("\r\x00")
    return text, status == "1"
