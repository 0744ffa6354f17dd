"""SMS transfer PDUs (3GPP TS 23.040 clause 9.2): SMS-SUBMIT out, SMS-DELIVER and SMS-STATUS-REPORT in.

PDUs travel as the hex text AT+CMGS, +CMGL, +CMGR and +CMT carry in PDU mode (TS 27.005 clause 3),
which puts the SMSC field ahead of the TPDU. Encoders for DELIVER and STATUS-REPORT exist so the
modem simulator can play the network. Everything here is pure: no I/O, no state.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime, timedelta, timezone

from .address import (
    decode_address,
    decode_smsc,
    encode_number_address,
    encode_sender_address,
    encode_smsc,
)
from .octets import OctetReader, PduError, parse_hex
from .userdata import DCS_BY_ENCODING, Concat, EncodedUserData, decode_user_data, encode_text_parts

__all__ = [
    "Concat",
    "Deliver",
    "PduError",
    "StatusReport",
    "Submit",
    "SubmitPart",
    "decode_deliver",
    "decode_pdu",
    "decode_status_report",
    "decode_submit",
    "encode_deliver",
    "encode_status_report",
    "encode_submit",
]

# TP-MTI, bits 1..0 of the first octet (23.040 clause 9.2.3.1), as a modem stores messages.
_MTI_DELIVER = 0b00
_MTI_SUBMIT = 0b01
_MTI_STATUS_REPORT = 0b10
_MMS_NO_MORE = 0x04  # TP-MMS (9.2.3.2): set means no more messages are waiting
_VPF_RELATIVE = 0b10  # TP-VPF (9.2.3.3), bits 4..3
_SRR = 0x20  # TP-SRR (9.2.3.5): status report requested
_UDHI = 0x40  # TP-UDHI (9.2.3.23)
_PID_PLAIN = 0x00  # TP-PID (9.2.3.9): no interworking, plain short message
_TIMESTAMP_OCTETS = 7  # TP-SCTS (9.2.3.11)


@dataclass(frozen=True)
class SubmitPart:
    """One SMS-SUBMIT ready for AT+CMGS: the hex PDU (SMSC field included) and the TPDU length."""

    pdu: str
    tpdu_length: int


@dataclass(frozen=True)
class Submit:
    """A decoded SMS-SUBMIT, e.g. from the SIM's outbox; ``number`` is digits without ``+``."""

    number: str
    text: str
    status_report: bool
    message_reference: int
    concat: Concat | None
    encoding: str
    validity_minutes: int | None = None  # relative TP-VP only; None when absent or absolute


@dataclass(frozen=True)
class Deliver:
    """One received part. ``sender`` is digits without ``+``, or an alphanumeric sender's text;
    ``timestamp`` is the SC's local time with its own zone."""

    smsc: str | None
    sender: str
    timestamp: datetime
    text: str
    concat: Concat | None
    encoding: str


@dataclass(frozen=True)
class StatusReport:
    """An SMS-STATUS-REPORT; ``delivered`` and ``final`` are read from TP-ST (23.040 clause 9.2.3.15)."""

    smsc: str | None
    message_reference: int
    recipient: str
    submitted: datetime
    discharged: datetime
    status: int
    delivered: bool = field(init=False)
    final: bool = field(init=False)

    def __post_init__(self) -> None:
        # 0x00..0x02: received by, forwarded to, or replaced at the recipient. 0x20..0x3F: temporary
        # error, the SC is still trying; everything else is a verdict the SC will not revise.
        object.__setattr__(self, "delivered", self.status <= 0x02)
        object.__setattr__(self, "final", not 0x20 <= self.status <= 0x3F)


def encode_relative_validity(minutes: int) -> int:
    """TP-VP in the relative format (23.040 clause 9.2.3.12.1), rounded up to the next step.

    Rounding up means the network never drops a message sooner than asked.
    """
    if minutes < 1:
        raise ValueError(f"validity must be at least 1 minute, not {minutes}")
    if minutes <= 12 * 60:  # 0..143: (VP + 1) x 5 minutes
        return -(-minutes // 5) - 1
    if minutes <= 24 * 60:  # 144..167: 12 hours + (VP - 143) x 30 minutes
        return 143 + -(-(minutes - 12 * 60) // 30)
    if minutes <= 30 * 24 * 60:  # 168..196: (VP - 166) days
        return 166 + -(-minutes // (24 * 60))
    if minutes <= 63 * 7 * 24 * 60:  # 197..255: (VP - 192) weeks
        return 192 + -(-minutes // (7 * 24 * 60))
    raise ValueError(f"validity of {minutes} minutes exceeds the 63 weeks TP-VP can express")


def decode_relative_validity(vp: int) -> int:
    """Minutes of a relative TP-VP (23.040 clause 9.2.3.12.1)."""
    if vp <= 143:
        return (vp + 1) * 5
    if vp <= 167:
        return 12 * 60 + (vp - 143) * 30
    if vp <= 196:
        return (vp - 166) * 24 * 60
    return (vp - 192) * 7 * 24 * 60


def encode_timestamp(moment: datetime) -> bytes:
    """TP-SCTS (23.040 clause 9.2.3.11): local time in swapped BCD, then the zone in quarter hours."""
    offset = moment.utcoffset()
    if offset is None:
        raise ValueError("a PDU timestamp needs a timezone-aware datetime")
    quarters, remainder = divmod(offset, timedelta(minutes=15))
    if remainder or abs(quarters) > 79:
        raise ValueError(f"timezone offset {offset} is not a multiple of 15 minutes within ±19:45")
    if not 2000 <= moment.year <= 2099:
        raise ValueError(f"year {moment.year} does not fit a two-digit PDU year")
    fields = (moment.year % 100, moment.month, moment.day, moment.hour, moment.minute, moment.second)
    octets = [(value % 10) << 4 | value // 10 for value in fields]
    zone = abs(quarters)
    # bit 3 of the zone octet is the sign; the tens digit sits in bits 2..0
    octets.append((zone % 10) << 4 | zone // 10 | (0x08 if quarters < 0 else 0))
    return bytes(octets)


def decode_timestamp(raw: bytes) -> datetime:
    """A timezone-aware datetime from the 7 octets of a TP-SCTS or TP-DT (years read as 20xx)."""
    values = []
    for octet in raw[:6]:
        low, high = octet & 0xF, octet >> 4
        if low > 9 or high > 9:
            raise PduError(f"timestamp octet 0x{octet:02X} is not BCD")
        values.append(low * 10 + high)
    zone_octet = raw[6]
    if zone_octet >> 4 > 9:
        raise PduError(f"timezone octet 0x{zone_octet:02X} is not BCD")
    quarters = (zone_octet & 0x07) * 10 + (zone_octet >> 4)
    if zone_octet & 0x08:
        quarters = -quarters
    year, month, day, hour, minute, second = values
    try:
        zone = timezone(timedelta(minutes=15 * quarters))
        return datetime(2000 + year, month, day, hour, minute, second, tzinfo=zone)
    except ValueError as error:
        raise PduError(f"timestamp is not a valid date: {error}") from None


def _check_octet(name: str, value: int) -> None:
    if not 0 <= value <= 0xFF:
        raise ValueError(f"{name} must be 0..255, not {value}")


def encode_submit(
    number: str,
    text: str,
    *,
    concat_reference: int = 0,
    reference_16bit: bool = False,
    status_report: bool = False,
    validity_minutes: int | None = None,
    smsc: str | None = None,
    message_reference: int = 0,
) -> list[SubmitPart]:
    """The SMS-SUBMIT PDUs (23.040 clause 9.2.2.2) that send ``text`` to ``number``.

    GSM 7-bit when the text allows, else UCS2; several parts joined by a concatenation header
    when it is long. Part N carries TP-MR ``message_reference + N - 1`` (mod 256), although
    most modems substitute their own and report it in the +CMGS answer.
    """
    _check_octet("message_reference", message_reference)
    smsc_field = encode_smsc(smsc)
    destination = encode_number_address(number)
    validity = b"" if validity_minutes is None else bytes([encode_relative_validity(validity_minutes)])
    encoding, parts = encode_text_parts(text, concat_reference, reference_16bit)
    first = _MTI_SUBMIT | (_VPF_RELATIVE << 3 if validity else 0) | (_SRR if status_report else 0)
    result = []
    for index, user_data in enumerate(parts):
        tpdu = (
            bytes([first | _udhi(user_data), (message_reference + index) & 0xFF])
            + destination
            + bytes([_PID_PLAIN, DCS_BY_ENCODING[encoding]])
            + validity
            + user_data.octets
        )
        result.append(SubmitPart(pdu=(smsc_field + tpdu).hex().upper(), tpdu_length=len(tpdu)))
    return result


def _udhi(user_data: EncodedUserData) -> int:
    return _UDHI if user_data.has_header else 0


def encode_deliver(
    sender: str,
    text: str,
    timestamp: datetime,
    *,
    smsc: str | None = "6281100000",
    concat_reference: int = 0,
) -> list[str]:
    """The SMS-DELIVER PDUs (23.040 clause 9.2.2.1) a network hands a modem for ``text``.

    For the modem simulator. ``sender`` goes out alphanumeric (TON 101) unless it is a number.
    """
    prefix = encode_smsc(smsc)
    originator = encode_sender_address(sender)
    scts = encode_timestamp(timestamp)
    encoding, parts = encode_text_parts(text, concat_reference, False)
    return [
        (
            prefix
            + bytes([_MTI_DELIVER | _MMS_NO_MORE | _udhi(user_data)])
            + originator
            + bytes([_PID_PLAIN, DCS_BY_ENCODING[encoding]])
            + scts
            + user_data.octets
        ).hex().upper()
        for user_data in parts
    ]


def encode_status_report(
    message_reference: int,
    recipient: str,
    status: int,
    submitted: datetime,
    discharged: datetime,
    *,
    smsc: str | None = "6281100000",
) -> str:
    """An SMS-STATUS-REPORT PDU (23.040 clause 9.2.2.3), for the modem simulator."""
    _check_octet("message_reference", message_reference)
    _check_octet("status", status)
    tpdu = (
        bytes([_MTI_STATUS_REPORT | _MMS_NO_MORE, message_reference])
        + encode_number_address(recipient)
        + encode_timestamp(submitted)
        + encode_timestamp(discharged)
        + bytes([status])
    )
    return (encode_smsc(smsc) + tpdu).hex().upper()


def _open(pdu_hex: str, has_smsc: bool) -> tuple[OctetReader, str | None, int]:
    """Reader positioned after the first octet, the SMSC (None when absent) and the first octet."""
    reader = OctetReader(parse_hex(pdu_hex))
    smsc = decode_smsc(reader) if has_smsc else None
    return reader, smsc, reader.octet("first octet")


def _expect(first: int, mti: int, name: str) -> None:
    if first & 0b11 != mti:
        raise PduError(f"not an {name}: TP-MTI is {first & 0b11:02b}")


def _read_submit(reader: OctetReader, first: int) -> Submit:
    message_reference = reader.octet("TP-MR")
    number = decode_address(reader, "TP-DA")
    reader.octet("TP-PID")
    dcs = reader.octet("TP-DCS")
    validity_format = (first >> 3) & 0b11
    validity = None
    if validity_format == _VPF_RELATIVE:
        validity = decode_relative_validity(reader.octet("TP-VP"))
    elif validity_format:  # enhanced (01) or absolute (11): 7 octets we do not interpret
        reader.take(7, "TP-VP")
    user_data = decode_user_data(reader, dcs, bool(first & _UDHI))
    return Submit(
        number=number,
        text=user_data.text,
        status_report=bool(first & _SRR),
        message_reference=message_reference,
        concat=user_data.concat,
        encoding=user_data.encoding,
        validity_minutes=validity,
    )


def _read_deliver(reader: OctetReader, first: int, smsc: str | None) -> Deliver:
    sender = decode_address(reader, "TP-OA")
    reader.octet("TP-PID")
    dcs = reader.octet("TP-DCS")
    timestamp = decode_timestamp(reader.take(_TIMESTAMP_OCTETS, "TP-SCTS"))
    user_data = decode_user_data(reader, dcs, bool(first & _UDHI))
    return Deliver(
        smsc=smsc,
        sender=sender,
        timestamp=timestamp,
        text=user_data.text,
        concat=user_data.concat,
        encoding=user_data.encoding,
    )


def _read_status_report(reader: OctetReader, smsc: str | None) -> StatusReport:
    """Mandatory fields only; the optional TP-PI and what follows it (9.2.2.3) are ignored."""
    return StatusReport(
        smsc=smsc,
        message_reference=reader.octet("TP-MR"),
        recipient=decode_address(reader, "TP-RA"),
        submitted=decode_timestamp(reader.take(_TIMESTAMP_OCTETS, "TP-SCTS")),
        discharged=decode_timestamp(reader.take(_TIMESTAMP_OCTETS, "TP-DT")),
        status=reader.octet("TP-ST"),
    )


def decode_submit(pdu_hex: str, *, has_smsc: bool = True) -> Submit:
    """Decode an SMS-SUBMIT, as AT+CMGL lists one from the SIM's outbox."""
    reader, _smsc, first = _open(pdu_hex, has_smsc)
    _expect(first, _MTI_SUBMIT, "SMS-SUBMIT")
    return _read_submit(reader, first)


def decode_deliver(pdu_hex: str, *, has_smsc: bool = True) -> Deliver:
    """Decode an SMS-DELIVER: one part of a received message."""
    reader, smsc, first = _open(pdu_hex, has_smsc)
    _expect(first, _MTI_DELIVER, "SMS-DELIVER")
    return _read_deliver(reader, first, smsc)


def decode_status_report(pdu_hex: str, *, has_smsc: bool = True) -> StatusReport:
    """Decode an SMS-STATUS-REPORT (+CDS, or one stored in the SR memory)."""
    reader, smsc, first = _open(pdu_hex, has_smsc)
    _expect(first, _MTI_STATUS_REPORT, "SMS-STATUS-REPORT")
    return _read_status_report(reader, smsc)


def decode_pdu(pdu_hex: str, *, has_smsc: bool = True) -> Deliver | StatusReport | Submit:
    """Decode whatever a modem stored or delivered, chosen by TP-MTI.

    In a modem's memory 00 is an SMS-DELIVER, 10 an SMS-STATUS-REPORT and 01 an SMS-SUBMIT from
    the outbox; 11 is reserved (23.040 clause 9.2.3.1).
    """
    reader, smsc, first = _open(pdu_hex, has_smsc)
    mti = first & 0b11
    if mti == _MTI_DELIVER:
        return _read_deliver(reader, first, smsc)
    if mti == _MTI_STATUS_REPORT:
        return _read_status_report(reader, smsc)
    if mti == _MTI_SUBMIT:
        return _read_submit(reader, first)
    raise PduError("TP-MTI 11 is reserved")
