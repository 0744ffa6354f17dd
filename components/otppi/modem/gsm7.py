"""The GSM 7-bit default alphabet (3GPP TS 23.038 clause 6.2.1) and septet packing (clause 6.1.2.1).

Text is kept as septet values (0..127) between the two steps, because the SMS length rules count
septets, not characters: an extension-table character costs two (the escape 0x1B and its code).
Pure functions, no state; the PDU codecs build on them.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence

ESCAPE = 0x1B

# 23.038 clause 6.2.1, indexed by septet value. Position 0x1B is the escape to the extension table,
# never a character of its own; the space there is only a placeholder and is not encodable.
_DEFAULT_TABLE = (
    "@£$¥èéùìòÇ\nØø\rÅå"
    "Δ_ΦΓΛΩΠΨΣΘΞ\x20ÆæßÉ"
    " !\"#¤%&'()*+,-./"
    "0123456789:;<=>?"
    "¡ABCDEFGHIJKLMNO"
    "PQRSTUVWXYZÄÖÑÜ§"
    "¿abcdefghijklmno"
    "pqrstuvwxyzäöñüà"
)
assert len(_DEFAULT_TABLE) == 128

# 23.038 clause 6.2.1.1: the extension table reached through 0x1B.
_EXTENSION_TABLE = {
    0x0A: "\f",
    0x14: "^",
    0x28: "{",
    0x29: "}",
    0x2F: "\\",
    0x3C: "[",
    0x3D: "~",
    0x3E: "]",
    0x40: "|",
    0x65: "€",
}

_ENCODE: dict[str, tuple[int, ...]] = {
    char: (code,) for code, char in enumerate(_DEFAULT_TABLE) if code != ESCAPE
}
_ENCODE.update({char: (ESCAPE, code) for code, char in _EXTENSION_TABLE.items()})


def is_gsm7(text: str) -> bool:
    """True when every character is in the default alphabet or its extension table."""
    return all(char in _ENCODE for char in text)


def char_septets(char: str) -> tuple[int, ...]:
    """The septets of one character: one, or two for an extension character.

    Raises ValueError when the character has no GSM 7-bit encoding.
    """
    try:
        return _ENCODE[char]
    except KeyError:
        raise ValueError(f"character {char!r} (U+{ord(char):04X}) is not in the GSM 7-bit alphabet") from None


def encode_gsm7(text: str) -> list[int]:
    """Septet values for ``text``, extension characters as escape + code."""
    septets: list[int] = []
    for char in text:
        septets.extend(char_septets(char))
    return septets


def decode_gsm7(septets: Iterable[int]) -> str:
    """Text from septet values.

    Unknown extension codes decode as the default-table character of the same code and a
    trailing or doubled escape as a space, as 23.038 clause 6.2.1.1 tells a receiver to display them.
    """
    chars: list[str] = []
    escaped = False
    for septet in septets:
        if not 0 <= septet <= 0x7F:
            raise ValueError(f"septet value {septet} is outside 0..127")
        if escaped:
            escaped = False
            if septet == ESCAPE:
                chars.append(" ")  # reserved for a further extension table: display a space
            else:
                chars.append(_EXTENSION_TABLE.get(septet, _DEFAULT_TABLE[septet]))
        elif septet == ESCAPE:
            escaped = True
        else:
            chars.append(_DEFAULT_TABLE[septet])
    if escaped:
        chars.append(" ")
    return "".join(chars)


def septet_length(text: str) -> int:
    """How many septets ``text`` takes; raises ValueError if it is not GSM 7-bit text."""
    return sum(len(char_septets(char)) for char in text)


def pack_septets(septets: Sequence[int], fill_bits: int = 0) -> bytes:
    """Pack septets LSB first into octets (23.038 clause 6.1.2.1.1).

    ``fill_bits`` zero bits come first, so that the septets start on a septet boundary after a
    user data header (23.040 clause 9.2.3.24); the header itself is not part of the result.
    """
    if not 0 <= fill_bits <= 6:
        raise ValueError(f"fill_bits must be 0..6, not {fill_bits}")
    accumulator = 0
    bits = fill_bits
    out = bytearray()
    for septet in septets:
        if not 0 <= septet <= 0x7F:
            raise ValueError(f"septet value {septet} is outside 0..127")
        accumulator |= septet << bits
        bits += 7
        while bits >= 8:
            out.append(accumulator & 0xFF)
            accumulator >>= 8
            bits -= 8
    if bits > 0:
        out.append(accumulator & 0xFF)
    return bytes(out)


def packed_length(count: int, fill_bits: int = 0) -> int:
    """Octets that ``count`` septets occupy after ``fill_bits`` fill bits."""
    return (fill_bits + 7 * count + 7) // 8


def unpack_septets(data: bytes, count: int, fill_bits: int = 0) -> list[int]:
    """The first ``count`` septets of ``data`` after ``fill_bits`` fill bits.

    Raises ValueError when ``data`` is too short to hold them; extra octets are ignored.
    """
    if not 0 <= fill_bits <= 6:
        raise ValueError(f"fill_bits must be 0..6, not {fill_bits}")
    if count < 0:
        raise ValueError(f"septet count must not be negative, not {count}")
    needed = packed_length(count, fill_bits)
    if len(data) < needed:
        raise ValueError(f"{count} septets need {needed} octets, only {len(data)} given")
    value = int.from_bytes(data[:needed], "little") >> fill_bits
    return [(value >> (7 * index)) & 0x7F for index in range(count)]
