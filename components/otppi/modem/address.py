"""Address fields: TP-DA/TP-OA/TP-RA (3GPP TS 23.040 clause 9.1.2.5) and the SMSC field (TS 24.011
clause 8.2.5.2, as AT+CMGS/+CMGL carry it per TS 27.005 clause 3).

Numbers travel as semi-octets: two digits an octet, low nibble first, 0xF filling the last octet
(clause 9.1.2.3); 0xA..0xE stand for ``* # a b c`` (TS 24.008 table 10.5.118). Alphanumeric
originators (``"Google"``) are packed GSM 7-bit text with type of number 101.
"""

from __future__ import annotations

import re

from .gsm7 import decode_gsm7, encode_gsm7, pack_septets, unpack_septets
from .octets import OctetReader, PduError

TOA_INTERNATIONAL = 0x91  # ext bit, TON 001 international, NPI 0001 ISDN/E.164
TOA_UNKNOWN = 0x81  # ext bit, TON 000 unknown, NPI 0001 ISDN/E.164
TOA_ALPHANUMERIC = 0xD0  # ext bit, TON 101 alphanumeric, NPI 0000
_TON_ALPHANUMERIC = 0b101

MAX_ADDRESS_DIGITS = 20  # 23.040 clause 9.1.2.5: the address value is at most 10 octets
MAX_ALPHANUMERIC_SEPTETS = 11  # 20 semi-octets hold 80 bits: 11 septets
_MAX_SMSC_LENGTH = 11  # 24.011 clause 8.2.5.2: at most 12 octets including the length octet
# A normalised MSISDN (country code, no "+") is longer than this; shorter digit strings are
# short codes or national numbers and go out as type "unknown" for the network to interpret.
_SHORT_CODE_MAX_DIGITS = 7

_SEMI_OCTET_CHARS = "0123456789*#abc"
_FILLER = 0xF
_NUMBER = re.compile(r"\+?[0-9*#]+")
_PLAIN_NUMBER = re.compile(r"\+?[0-9]+")


def is_numeric_address(text: str) -> bool:
    """True for a dialable number (digits, ``*``, ``#``, optional leading ``+``)."""
    return bool(_NUMBER.fullmatch(text))


def _number_type(number: str) -> tuple[str, int]:
    """Digits and type of address for a number, or ValueError if it is not one."""
    if not _NUMBER.fullmatch(number):
        raise ValueError(f"not a phone number: {number!r}")
    digits = number.removeprefix("+")
    if len(digits) > MAX_ADDRESS_DIGITS:
        raise ValueError(f"a number has at most {MAX_ADDRESS_DIGITS} digits, not {len(digits)}")
    if number.startswith("+"):
        if not _PLAIN_NUMBER.fullmatch(number):
            raise ValueError(f"an international number is digits only: {number!r}")
        return digits, TOA_INTERNATIONAL
    international = (
        _PLAIN_NUMBER.fullmatch(digits)
        and len(digits) > _SHORT_CODE_MAX_DIGITS
        and not digits.startswith("0")
    )
    return digits, TOA_INTERNATIONAL if international else TOA_UNKNOWN


def encode_semi_octets(digits: str) -> bytes:
    """Digits packed low nibble first, an odd count padded with the 0xF filler (9.1.2.3)."""
    nibbles = [_SEMI_OCTET_CHARS.index(char) for char in digits]
    if len(nibbles) % 2:
        nibbles.append(_FILLER)
    return bytes(low | high << 4 for low, high in zip(nibbles[::2], nibbles[1::2], strict=True))


def decode_semi_octets(data: bytes, count: int) -> str:
    """The first ``count`` semi-octets of ``data`` as digits; trailing fillers are dropped."""
    nibbles = [(data[index // 2] >> (4 * (index % 2))) & 0xF for index in range(count)]
    while nibbles and nibbles[-1] == _FILLER:
        nibbles.pop()
    if _FILLER in nibbles:
        raise PduError("filler nibble 0xF inside an address")
    return "".join(_SEMI_OCTET_CHARS[nibble] for nibble in nibbles)


def encode_number_address(number: str) -> bytes:
    """A TP-DA/TP-OA/TP-RA field for a number: length in digits, type of address, semi-octets."""
    digits, toa = _number_type(number)
    return bytes([len(digits), toa]) + encode_semi_octets(digits)


def encode_alphanumeric_address(text: str) -> bytes:
    """A TP-OA field for an alphanumeric sender (23.040 clause 9.1.2.5, TON 101).

    The length counts the semi-octets the packed septets really use, so a receiver computes
    the septet count back as ``length * 4 // 7`` without a spurious trailing ``@``.
    """
    septets = encode_gsm7(text)
    if not septets or len(septets) > MAX_ALPHANUMERIC_SEPTETS:
        raise ValueError(f"an alphanumeric sender is 1..{MAX_ALPHANUMERIC_SEPTETS} septets: {text!r}")
    semi_octets = (len(septets) * 7 + 3) // 4
    return bytes([semi_octets, TOA_ALPHANUMERIC]) + pack_septets(septets)


def encode_sender_address(sender: str) -> bytes:
    """TP-OA for a number, or for an alphanumeric sender when ``sender`` is not a number."""
    if is_numeric_address(sender):
        return encode_number_address(sender)
    return encode_alphanumeric_address(sender)


def decode_address(reader: OctetReader, what: str) -> str:
    """Read a TP-DA/TP-OA/TP-RA field: digits without ``+``, or the alphanumeric text."""
    semi_octets = reader.octet(f"{what} length")
    if semi_octets > MAX_ADDRESS_DIGITS:
        raise PduError(f"{what} length {semi_octets} exceeds {MAX_ADDRESS_DIGITS} semi-octets")
    toa = reader.octet(f"{what} type")
    value = reader.take((semi_octets + 1) // 2, what)
    if (toa >> 4) & 0b111 == _TON_ALPHANUMERIC:
        return decode_gsm7(unpack_septets(value, semi_octets * 4 // 7))
    return decode_semi_octets(value, semi_octets)


def encode_smsc(smsc: str | None) -> bytes:
    """The SMSC field ahead of the TPDU; a lone ``00`` lets the modem use the SIM's SMSC."""
    if smsc is None:
        return b"\x00"
    digits, toa = _number_type(smsc)
    value = encode_semi_octets(digits)
    return bytes([len(value) + 1, toa]) + value


def decode_smsc(reader: OctetReader) -> str | None:
    """Read the SMSC field; its length counts octets (type included), not digits."""
    length = reader.octet("SMSC length")
    if length == 0:
        return None
    if length > _MAX_SMSC_LENGTH:
        raise PduError(f"SMSC length {length} exceeds {_MAX_SMSC_LENGTH} octets")
    reader.octet("SMSC type")
    value = reader.take(length - 1, "SMSC address")
    return decode_semi_octets(value, 2 * len(value))
