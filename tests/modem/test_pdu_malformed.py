"""Hostile input: every malformed PDU ends as a PduError that says what was wrong, never as an
IndexError or another exception from deep inside a decoder."""

from __future__ import annotations

from datetime import datetime, timedelta, timezone

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from otppi.modem.pdu import Concat, PduError, decode_pdu, decode_submit, encode_deliver, encode_submit

PROPERTY = settings(database=None, deadline=None)
WHEN = datetime(2024, 5, 17, 9, 30, 15, tzinfo=timezone(timedelta(hours=7)))


@pytest.mark.parametrize(
    ("pdu", "reason"),
    [
        ("", "truncated"),
        ("0", "odd number"),
        ("0G", "not hex"),
        ("00  11", "not hex"),
        ("０００", "odd number"),
        ("00", "truncated"),
        ("0C91" + "11" * 11, "SMSC length"),
        ("0043010C910661345542F60008A0050003000301306F3044", "reserved"),
        ("0041010C910661345542F60008A0050003000301306F3044", "exceeds 140"),  # TP-UDL 160 octets of UCS2
        ("0001001591" + "11" * 11, "exceeds 20"),  # 21-digit TP-DA
        ("0001000491F123", "filler"),
        ("000100039121F30000", "truncated"),  # TP-UDL missing
        ("00010003912143000005C8329BFD", "TP-UD needs"),  # 5 septets in 4 octets
        ("00010003912143002000", "compressed"),
        ("000100039121430000A1" + "00" * 141, "exceeds 160"),
        ("00410003912143000800", "empty"),  # UDHI without any user data
        ("0041000391214300080405000301", "header length"),  # UDHL 5 > 3 octets left
        ("00410003912143000806030003000101", "information element 0x00"),  # IE longer than the header
        ("004100039121430008090600040001020300" + "41", "concatenation element"),  # 0x00 with 4 octets
        ("00410003912143000803050000", "header"),
        ("004100039121430000" + "0100", "exceeds TP-UDL"),  # 7-bit: a 1-octet header is 2 septets
        ("00010003912143000803410041", "odd number of octets"),
        ("00040391214300003A10101000000000", "not BCD"),
        ("0004039121430000" + "31311010000000" + "00", "not a valid date"),
        ("0004039121430000" + "310101000000A0" + "00", "not BCD"),
        ("000207039121435111720000000000", "truncated"),  # TP-DT cut short
        # a published capture whose TP-UDL (95 septets, 84 octets) runs one octet past the end
        ("07918896532430280406918816880000806051606514235FC3309B0D42BEDB6590380F22A7C3ECB4FB0CE2AD7C20DEF85D"
         "77D3E579D0F84D2E836839900FC403C1D16F7719E47E837CA01D681866B341ECF738CC06A9EB733A889C0EB341ECF738C"
         "C06C1D16F7719E47EBB", "TP-UD needs 84 octets"),
    ],
)
def test_malformed_pdus(pdu: str, reason: str) -> None:
    with pytest.raises(PduError, match=reason):
        decode_pdu(pdu)


@pytest.mark.parametrize("pdu", [None, b"0011", 17])
def test_non_text_input(pdu: object) -> None:
    with pytest.raises(PduError):
        decode_pdu(pdu)  # type: ignore[arg-type]


def test_trailing_line_break_is_ignored() -> None:
    assert decode_pdu("0006D60B911326880736F4111011719551401110117195714000\r\n").message_reference == 214


def test_invalid_concatenation_numbers_are_ignored() -> None:
    # 23.040 clause 9.2.3.24.1: a part number of 0 or beyond the total voids the element
    for element in ("0003070200", "0003070203", "0003070000"):
        pdu = "0041000391214300080805" + element + "0041"
        message = decode_submit(pdu, has_smsc=True)
        assert message.concat is None
        assert message.text == "A"


def test_other_header_elements_are_skipped() -> None:
    # application port addressing (IEI 05) ahead of the concatenation element
    pdu = "004100039121430008" + "0E" + "0B" + "050400000000" + "0003090302" + "0041"
    message = decode_submit(pdu)
    assert message.concat == Concat(9, 3, 2)
    assert message.text == "A"


def test_enhanced_validity_period_is_skipped() -> None:
    pdu = "000900039121430000" + "00" * 7 + "0141"
    assert decode_submit(pdu).text == "A"



@PROPERTY
@given(st.binary(max_size=200), st.booleans())
def test_random_octets_raise_only_pdu_errors(data: bytes, has_smsc: bool) -> None:
    try:
        decode_pdu(data.hex(), has_smsc=has_smsc)
    except PduError:
        pass


VALID_PDUS = [
    "07911326040000F0040B911346610089F60000208062917314080CC8F71D14969741F977FD07",
    "0006D60B911326880736F4111011719551401110117195714000",
    encode_submit("628123456789", "a" * 200, validity_minutes=10)[0].pdu,
    encode_deliver("Bank", "😀 " * 50, WHEN)[0],
]


@PROPERTY
@given(st.sampled_from(VALID_PDUS), st.data())
def test_corrupted_pdus_raise_only_pdu_errors(pdu: str, data: st.DataObject) -> None:
    octets = bytearray(bytes.fromhex(pdu))
    for _ in range(data.draw(st.integers(1, 4))):
        octets[data.draw(st.integers(0, len(octets) - 1))] = data.draw(st.integers(0, 255))
    cut = data.draw(st.integers(0, len(octets)))
    for candidate in (bytes(octets), bytes(octets[:cut])):
        try:
            decode_pdu(candidate.hex())
        except PduError:
            pass
