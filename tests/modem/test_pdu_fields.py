"""PDU fields: addresses (23.040 clause 9.1.2.5), the SMSC field, TP-SCTS (9.2.3.11) and the
relative TP-VP (9.2.3.12.1). Address and timestamp vectors come from the python-gsmmodem tests."""

from __future__ import annotations

from datetime import datetime, timedelta, timezone

import pytest

from otppi.modem.address import decode_address, encode_number_address, encode_sender_address, encode_smsc
from otppi.modem.octets import OctetReader
from otppi.modem.pdu import decode_relative_validity, decode_timestamp, encode_relative_validity, encode_timestamp


def zone(hours: float) -> timezone:
    return timezone(timedelta(hours=hours))


@pytest.mark.parametrize(
    ("address", "encoded"),
    [
        ("+9876543210", "0A918967452301"),
        ("+987654321", "099189674523F1"),
        ("+27829135934", "0B917228195339F4"),
        ("628123456789", "0C91261832547698"),  # a normalised MSISDN is international
        ("3636", "04816363"),  # a short code is not
        ("08123456789", "0B818021436587F9"),  # nor a national number
        ("*123#", "05811A32FB"),
        ("abc", "06D061F118"),
        ("FRANCOIS", "0ED04669D0397C26A7"),
        ("a[]{}€", "14D0E10D6FE3DBA036A94D19"),
    ],
)
def test_address_fields(address: str, encoded: str) -> None:
    assert encode_sender_address(address).hex().upper() == encoded
    assert decode_address(OctetReader(bytes.fromhex(encoded)), "TP-OA") == address.removeprefix("+")


@pytest.mark.parametrize("number", ["", "+", "Google", "12 34", "+12*3", "1" * 21, "٣٣"])
def test_bad_numbers(number: str) -> None:
    with pytest.raises(ValueError):
        encode_number_address(number)


@pytest.mark.parametrize("sender", ["", "TwelveChars!", "Kode😀"])
def test_bad_alphanumeric_senders(sender: str) -> None:
    with pytest.raises(ValueError):
        encode_sender_address(sender)


def test_smsc_field() -> None:
    assert encode_smsc(None) == b"\x00"
    assert encode_smsc("+9876543210").hex().upper() == "06918967452301"
    assert encode_smsc("+2782913593").hex().upper() == "06917228195339"


@pytest.mark.parametrize(
    ("moment", "encoded"),
    [
        (datetime(2015, 11, 27, 0, 0, 0, tzinfo=zone(0)), "51117200000000"),
        (datetime(2015, 11, 27, 0, 0, 0, tzinfo=zone(2)), "51117200000080"),
        (datetime(2007, 4, 12, 23, 25, 42, tzinfo=zone(8)), "70402132522423"),
        (datetime(2007, 4, 12, 23, 25, 42, tzinfo=zone(-8)), "7040213252242B"),
        (datetime(2024, 1, 2, 3, 4, 5, tzinfo=zone(-3.5)), "42102030405049"),
        (datetime(2024, 1, 2, 3, 4, 5, tzinfo=zone(5.75)), "42102030405032"),
    ],
)
def test_timestamps(moment: datetime, encoded: str) -> None:
    assert encode_timestamp(moment).hex().upper() == encoded
    decoded = decode_timestamp(bytes.fromhex(encoded))
    assert decoded == moment
    assert decoded.utcoffset() == moment.utcoffset()


@pytest.mark.parametrize(
    "moment",
    [
        datetime(2024, 1, 1),  # naive
        datetime(2024, 1, 1, tzinfo=timezone(timedelta(minutes=10))),
        datetime(1999, 12, 31, tzinfo=timezone.utc),
        datetime(2100, 1, 1, tzinfo=timezone.utc),
    ],
)
def test_timestamps_that_cannot_be_encoded(moment: datetime) -> None:
    with pytest.raises(ValueError):
        encode_timestamp(moment)


@pytest.mark.parametrize(
    ("minutes", "vp"),
    [(1, 0), (5, 0), (6, 1), (30, 5), (12 * 60, 143), (12 * 60 + 1, 144), (16 * 60, 151),
     (24 * 60, 167), (24 * 60 + 1, 168), (3 * 24 * 60, 169), (30 * 24 * 60, 196),
     (30 * 24 * 60 + 1, 197), (5 * 7 * 24 * 60, 197), (63 * 7 * 24 * 60, 255)],
)
def test_relative_validity_rounds_up(minutes: int, vp: int) -> None:
    assert encode_relative_validity(minutes) == vp
    assert decode_relative_validity(vp) >= minutes


@pytest.mark.parametrize("minutes", [0, -5, 63 * 7 * 24 * 60 + 1])
def test_relative_validity_out_of_range(minutes: int) -> None:
    with pytest.raises(ValueError):
        encode_relative_validity(minutes)


def test_every_relative_validity_value_round_trips() -> None:
    values = [decode_relative_validity(vp) for vp in range(256)]
    assert values == sorted(set(values))
    assert [encode_relative_validity(minutes) for minutes in values] == list(range(256))
