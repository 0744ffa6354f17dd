"""User data: the data coding scheme (3GPP TS 23.038 clause 4), the user data header with its
concatenation elements (TS 23.040 clause 9.2.3.24) and splitting a text into parts.

Splitting works on whole characters, so an escape sequence or a UTF-16 surrogate pair is never
cut in two: each part decodes to valid text on its own, even on phones that never reassemble.
"""

from __future__ import annotations

from dataclasses import dataclass

from .gsm7 import (
    char_septets,
    decode_gsm7,
    encode_gsm7,
    is_gsm7,
    pack_septets,
    packed_length,
    unpack_septets,
)
from .octets import OctetReader, PduError

ENCODING_GSM7 = "gsm7"
ENCODING_8BIT = "8bit"
ENCODING_UCS2 = "ucs2"
DCS_BY_ENCODING = {ENCODING_GSM7: 0x00, ENCODING_8BIT: 0x04, ENCODING_UCS2: 0x08}

MAX_USER_DATA_OCTETS = 140  # 23.040 clause 9.2.3.16
MAX_SEPTETS = 160  # 140 octets of packed septets
_IEI_CONCAT_8BIT = 0x00  # 23.040 clause 9.2.3.24.1
_IEI_CONCAT_16BIT = 0x08  # 23.040 clause 9.2.3.24.8
_MAX_PARTS = 255


@dataclass(frozen=True)
class Concat:
    """Where a part sits in a concatenated message (23.040 clause 9.2.3.24.1)."""

    reference: int
    total: int
    sequence: int


@dataclass(frozen=True)
class UserData:
    """Decoded TP-UD: the text of one part and its concatenation element, if any."""

    text: str
    concat: Concat | None
    encoding: str


@dataclass(frozen=True)
class EncodedUserData:
    """TP-UDL followed by TP-UD, ready to append to a TPDU, and whether TP-UDHI must be set."""

    octets: bytes
    has_header: bool


def encoding_of(dcs: int) -> str:
    """The alphabet a TP-DCS selects (23.038 clause 4).

    Reserved codings are read as the default alphabet, as clause 4 tells a receiver to.
    """
    group = dcs >> 4
    if group <= 0x7:  # general data coding, with or without automatic deletion
        if dcs & 0x20:
            raise PduError(f"compressed user data (DCS 0x{dcs:02X}, TS 23.042) is not supported")
        return (ENCODING_GSM7, ENCODING_8BIT, ENCODING_UCS2, ENCODING_GSM7)[(dcs >> 2) & 0b11]
    if group == 0xE:  # message waiting indication, store message, UCS2
        return ENCODING_UCS2
    if group == 0xF:  # data coding / message class: bit 2 selects 8-bit data
        return ENCODING_8BIT if dcs & 0x04 else ENCODING_GSM7
    return ENCODING_GSM7  # reserved groups 1000..1011 and message waiting 1100, 1101


def _parse_header(data: bytes) -> tuple[Concat | None, int]:
    """The concatenation element of a user data header and the header's size in octets.

    Other elements are skipped. A repeated element counts by its last occurrence, and one that
    names part 0, or a part beyond the total, is ignored (23.040 clause 9.2.3.24.1).
    """
    if not data:
        raise PduError("TP-UDHI is set but the user data is empty")
    header_length = 1 + data[0]
    if header_length > len(data):
        raise PduError(f"user data header length {data[0]} exceeds the {len(data) - 1} octets of user data")
    elements = OctetReader(data[1:header_length])
    concat = None
    while elements.remaining:
        iei = elements.octet("information element identifier")
        value = elements.take(elements.octet("information element length"), f"information element 0x{iei:02X}")
        if iei in (_IEI_CONCAT_8BIT, _IEI_CONCAT_16BIT):
            concat = _parse_concat(iei, value)
    return concat, header_length


def _parse_concat(iei: int, value: bytes) -> Concat | None:
    expected = 3 if iei == _IEI_CONCAT_8BIT else 4
    if len(value) != expected:
        raise PduError(f"concatenation element 0x{iei:02X} has {len(value)} octets, not {expected}")
    reference = int.from_bytes(value[:-2], "big")
    total, sequence = value[-2], value[-1]
    if total == 0 or not 1 <= sequence <= total:
        return None
    return Concat(reference=reference, total=total, sequence=sequence)


def _header_septets(header_octets: int) -> int:
    """Septets a header of this size occupies, fill bits included (23.040 clause 9.2.3.24)."""
    return (header_octets * 8 + 6) // 7


def decode_user_data(reader: OctetReader, dcs: int, has_header: bool) -> UserData:
    """Read TP-UDL and TP-UD; octets after the user data are ignored."""
    encoding = encoding_of(dcs)
    length = reader.octet("TP-UDL")
    if encoding == ENCODING_GSM7:
        return _decode_septet_user_data(reader, length, has_header)
    if length > MAX_USER_DATA_OCTETS:
        raise PduError(f"TP-UDL {length} exceeds {MAX_USER_DATA_OCTETS} octets")
    data = reader.take(length, "TP-UD")
    concat, header_octets = _parse_header(data) if has_header else (None, 0)
    body = data[header_octets:]
    if encoding == ENCODING_8BIT:
        return UserData(body.decode("latin-1"), concat, encoding)
    if len(body) % 2:
        raise PduError(f"UCS2 user data has an odd number of octets ({len(body)})")
    # A surrogate pair split across parts by a foreign sender decodes as U+FFFD in each part.
    return UserData(body.decode("utf-16-be", errors="replace"), concat, encoding)


def _decode_septet_user_data(reader: OctetReader, length: int, has_header: bool) -> UserData:
    """7-bit user data: TP-UDL counts septets, the header and its fill bits included."""
    if length > MAX_SEPTETS:
        raise PduError(f"TP-UDL {length} exceeds {MAX_SEPTETS} septets")
    data = reader.take(packed_length(length), "TP-UD")
    concat, header_octets = _parse_header(data) if has_header else (None, 0)
    header_septets = _header_septets(header_octets)
    if header_septets > length:
        raise PduError(f"user data header of {header_octets} octets exceeds TP-UDL {length} septets")
    fill_bits = header_septets * 7 - header_octets * 8
    septets = unpack_septets(data[header_octets:], length - header_septets, fill_bits)
    return UserData(decode_gsm7(septets), concat, ENCODING_GSM7)


def choose_encoding(text: str) -> str:
    """GSM 7-bit when every character has a septet encoding, else UCS2."""
    return ENCODING_GSM7 if is_gsm7(text) else ENCODING_UCS2


def _cost(char: str, encoding: str) -> int:
    """Septets (GSM 7-bit) or UTF-16 code units (UCS2) one character takes."""
    if encoding == ENCODING_GSM7:
        return len(char_septets(char))
    return 2 if ord(char) > 0xFFFF else 1


def _capacity(encoding: str, header_octets: int) -> int:
    """Septets or UTF-16 units that fit in 140 octets next to a header of this size."""
    if encoding == ENCODING_GSM7:
        return MAX_SEPTETS - _header_septets(header_octets)
    return (MAX_USER_DATA_OCTETS - header_octets) // 2


def _concat_header(reference: int, total: int, sequence: int, reference_16bit: bool) -> bytes:
    """UDHL plus one concatenation element (23.040 clauses 9.2.3.24.1 and 9.2.3.24.8)."""
    if reference_16bit:
        element = bytes([_IEI_CONCAT_16BIT, 4]) + reference.to_bytes(2, "big") + bytes([total, sequence])
    else:
        element = bytes([_IEI_CONCAT_8BIT, 3, reference, total, sequence])
    return bytes([len(element)]) + element


def split_text(text: str, encoding: str, reference_16bit: bool) -> list[str]:
    """Cut ``text`` into the fewest parts that fit, never inside a character's encoding."""
    costs = [_cost(char, encoding) for char in text]
    if sum(costs) <= _capacity(encoding, 0):
        return [text]
    header_octets = len(_concat_header(0, 1, 1, reference_16bit))
    capacity = _capacity(encoding, header_octets)
    parts: list[str] = []
    start = used = 0
    for index, cost in enumerate(costs):
        if used + cost > capacity:
            parts.append(text[start:index])
            start, used = index, 0
        used += cost
    parts.append(text[start:])
    if len(parts) > _MAX_PARTS:
        raise ValueError(f"text needs {len(parts)} parts, at most {_MAX_PARTS} are possible")
    return parts


def part_count(text: str) -> int:
    """How many SMS parts *text* needs (8-bit concatenation references, as sends use)."""
    return len(split_text(text, choose_encoding(text), False))


def encode_user_data(text: str, encoding: str, concat: Concat | None, reference_16bit: bool) -> EncodedUserData:
    """TP-UDL and TP-UD for one part, with a concatenation header when ``concat`` is given."""
    header = b""
    if concat is not None:
        header = _concat_header(concat.reference, concat.total, concat.sequence, reference_16bit)
    if encoding == ENCODING_GSM7:
        header_septets = _header_septets(len(header))
        septets = encode_gsm7(text)
        body = pack_septets(septets, header_septets * 7 - len(header) * 8)
        length = header_septets + len(septets)
    else:
        body = text.encode("utf-16-be")
        length = len(header) + len(body)
    if len(header) + len(body) > MAX_USER_DATA_OCTETS:
        raise ValueError(f"part of {len(header) + len(body)} octets exceeds {MAX_USER_DATA_OCTETS}")
    return EncodedUserData(bytes([length]) + header + body, bool(header))


def encode_text_parts(text: str, concat_reference: int, reference_16bit: bool) -> tuple[str, list[EncodedUserData]]:
    """The encoding chosen for ``text`` and the user data of each part, in order."""
    limit = 0xFFFF if reference_16bit else 0xFF
    if not 0 <= concat_reference <= limit:
        raise ValueError(f"concat_reference must be 0..{limit}, not {concat_reference}")
    encoding = choose_encoding(text)
    chunks = split_text(text, encoding, reference_16bit)
    if len(chunks) == 1:
        return encoding, [encode_user_data(chunks[0], encoding, None, reference_16bit)]
    return encoding, [
        encode_user_data(chunk, encoding, Concat(concat_reference, len(chunks), number), reference_16bit)
        for number, chunk in enumerate(chunks, start=1)
    ]
