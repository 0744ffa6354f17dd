"""GSM 7-bit alphabet and septet packing (3GPP TS 23.038 clauses 6.1.2.1 and 6.2.1)."""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from otppi.modem.gsm7 import (
    decode_gsm7,
    encode_gsm7,
    is_gsm7,
    pack_septets,
    septet_length,
    unpack_septets,
)

EXTENSION_CHARS = "\f^{}\\[~]|€"
DEFAULT_CHARS = decode_gsm7([code for code in range(128) if code != 0x1B])
GSM_TEXT = st.text(alphabet=st.sampled_from(DEFAULT_CHARS + EXTENSION_CHARS))
PROPERTY = settings(database=None, deadline=None)

# Published packings (python-gsmmodem test/test_pdu.py and the 23.040 "hellohello" example).
PACKED = [
    ("123", "31D90C"),
    ("12345678", "31D98C56B3DD70"),
    ("Hello World!", "C8329BFD065DDF72363904"),
    ("hellohello", "E8329BFD4697D9EC37"),
    ("How are you?", "C8F71D14969741F977FD07"),
    ("[{abc}]~", "1BDE0615168F37A98D6FD303"),
    ("{åΦΓΛΩΠΨΣΘ€}", "1BD44332A1542C174C6653DEA400"),
    ("a[]{}€", "E10D6FE3DBA036A94D19"),
]


def test_default_alphabet_has_128_positions_minus_escape() -> None:
    assert len(DEFAULT_CHARS) == 127
    assert len(set(DEFAULT_CHARS)) == 127


@pytest.mark.parametrize(
    ("char", "septet"),
    [("@", 0x00), ("£", 0x01), ("\n", 0x0A), ("\r", 0x0D), ("Δ", 0x10), ("_", 0x11), ("Ω", 0x15),
     (" ", 0x20), ("¤", 0x24), ("¡", 0x40), ("§", 0x5F), ("¿", 0x60), ("à", 0x7F)],
)
def test_default_table_positions(char: str, septet: int) -> None:
    assert encode_gsm7(char) == [septet]
    assert decode_gsm7([septet]) == char


@pytest.mark.parametrize(
    ("char", "code"),
    [("\f", 0x0A), ("^", 0x14), ("{", 0x28), ("}", 0x29), ("\\", 0x2F), ("[", 0x3C), ("~", 0x3D),
     ("]", 0x3E), ("|", 0x40), ("€", 0x65)],
)
def test_extension_table_uses_escape(char: str, code: int) -> None:
    assert encode_gsm7(char) == [0x1B, code]
    assert decode_gsm7([0x1B, code]) == char
    assert septet_length(char) == 2


@pytest.mark.parametrize(("text", "packed"), PACKED)
def test_published_packings(text: str, packed: str) -> None:
    septets = encode_gsm7(text)
    assert pack_septets(septets).hex().upper() == packed
    assert decode_gsm7(unpack_septets(bytes.fromhex(packed), len(septets))) == text


def test_septet_length_counts_extension_chars_twice() -> None:
    assert septet_length("") == 0
    assert septet_length("abc") == 3
    assert septet_length("a€[") == 5


@pytest.mark.parametrize("text", ["世界", "ç", "😀", "`", "\t", "\x1b"])
def test_not_encodable(text: str) -> None:
    assert not is_gsm7(text)
    with pytest.raises(ValueError, match="not in the GSM 7-bit alphabet"):
        encode_gsm7(text)
    with pytest.raises(ValueError):
        septet_length(text)


def test_is_gsm7() -> None:
    assert is_gsm7("")
    assert is_gsm7("Your code is 123456 {€}")
    assert not is_gsm7("Kode Anda 123456 😀")


def test_unknown_extension_code_reads_as_default_character() -> None:
    # 23.038 clause 6.2.1.1: show the default-table character for an unknown extension code
    assert decode_gsm7([0x1B, 0x41]) == "A"


def test_stray_escapes_read_as_space() -> None:
    assert decode_gsm7([0x41, 0x1B]) == "A "
    assert decode_gsm7([0x1B, 0x1B, 0x41]) == " A"


def test_decode_rejects_values_beyond_seven_bits() -> None:
    with pytest.raises(ValueError):
        decode_gsm7([0x80])
    with pytest.raises(ValueError):
        pack_septets([0x80])


def test_fill_bits_shift_the_septets() -> None:
    # After a 6-octet UDH one fill bit aligns the text on a septet boundary (23.040 9.2.3.24)
    assert pack_septets([0x7F], fill_bits=1) == bytes([0xFE])
    assert pack_septets([0x7F, 0x7F], fill_bits=3) == bytes([0xF8, 0xFF, 0x01])
    assert unpack_septets(bytes([0xFE]), 1, fill_bits=1) == [0x7F]


def test_fill_bits_range_is_checked() -> None:
    with pytest.raises(ValueError):
        pack_septets([1], fill_bits=7)
    with pytest.raises(ValueError):
        unpack_septets(b"\x00", 1, fill_bits=-1)


def test_unpack_refuses_short_data() -> None:
    with pytest.raises(ValueError, match="need 2 octets"):
        unpack_septets(b"\x00", 2)
    with pytest.raises(ValueError):
        unpack_septets(b"\x00", -1)


def test_unpack_ignores_extra_octets() -> None:
    assert unpack_septets(bytes.fromhex("31D90CFFFF"), 3) == encode_gsm7("123")


def test_eight_septets_fill_seven_octets_exactly() -> None:
    assert len(pack_septets(encode_gsm7("12345678"))) == 7
    assert len(pack_septets(encode_gsm7("123456789"))) == 8


@PROPERTY
@given(GSM_TEXT)
def test_text_round_trip(text: str) -> None:
    septets = encode_gsm7(text)
    assert is_gsm7(text)
    assert septet_length(text) == len(septets)
    assert decode_gsm7(septets) == text


@PROPERTY
@given(st.lists(st.integers(0, 127), max_size=200), st.integers(0, 6))
def test_pack_round_trip(septets: list[int], fill_bits: int) -> None:
    packed = pack_septets(septets, fill_bits)
    assert len(packed) == (fill_bits + 7 * len(septets) + 7) // 8
    assert unpack_septets(packed, len(septets), fill_bits) == septets
    if fill_bits and packed:
        assert packed[0] & ((1 << fill_bits) - 1) == 0
