"""SMS PDUs (3GPP TS 23.040) against published vectors, split into parts, and by round trip.

Vectors come from the 23.040 tutorial examples (dreamfabric "How are you?", "hellohello"), the
python-gsmmodem test suite and the Qtopia/Openmoko PDU parsing tests.
"""

from __future__ import annotations

from datetime import datetime, timedelta, timezone

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from otppi.modem.gsm7 import decode_gsm7
from otppi.modem.pdu import (
    Concat,
    Deliver,
    PduError,
    StatusReport,
    Submit,
    decode_deliver,
    decode_pdu,
    decode_status_report,
    decode_submit,
    encode_deliver,
    encode_status_report,
    encode_submit,
)

PROPERTY = settings(database=None, deadline=None)
GSM_CHARS = decode_gsm7([code for code in range(128) if code != 0x1B]) + "\f^{}\\[~]|€"
GSM_TEXT = st.text(alphabet=st.sampled_from(GSM_CHARS), max_size=700)
ANY_TEXT = st.text(max_size=400)
WHEN = datetime(2024, 5, 17, 9, 30, 15, tzinfo=timezone(timedelta(hours=7)))


def zone(hours: float) -> timezone:
    return timezone(timedelta(hours=hours))


# --- published vectors -------------------------------------------------------------------------

def test_classic_deliver_how_are_you() -> None:
    message = decode_pdu("07911326040000F0040B911346610089F60000208062917314080CC8F71D14969741F977FD07")
    assert message == Deliver(
        smsc="31624000000",
        sender="31641600986",
        # zone octet 0x08: sign bit set, zero quarters, i.e. GMT
        timestamp=datetime(2002, 8, 26, 19, 37, 41, tzinfo=timezone.utc),
        text="How are you?",
        concat=None,
        encoding="gsm7",
    )


def test_classic_submit_hellohello() -> None:
    pdu = "0011000B916407281553F80000AA0AE8329BFD4697D9EC37"
    assert decode_submit(pdu) == Submit(
        number="46708251358", text="hellohello", status_report=False, message_reference=0,
        concat=None, encoding="gsm7", validity_minutes=4 * 24 * 60,
    )
    [part] = encode_submit("+46708251358", "hellohello", validity_minutes=4 * 24 * 60)
    assert part.pdu == pdu
    assert part.tpdu_length == 23


@pytest.mark.parametrize(
    ("number", "text", "options", "pdu"),
    [
        ("+27820001111", "Hello World!", {}, "0001000B917228001011F100000CC8329BFD065DDF72363904"),
        # UCS2, relative validity of 52 weeks, explicit SMSC
        ("+123456789", "世界您好！", {"validity_minutes": 52 * 7 * 24 * 60, "smsc": "+44000000000"},
         "07914400000000F01100099121436587F90008F40A4E16754C60A8597DFF01"),
    ],
)
def test_published_submit_encodings(number: str, text: str, options: dict, pdu: str) -> None:
    [part] = encode_submit(number, text, **options)
    assert part.pdu == pdu
    smsc_octets = int(pdu[:2], 16) + 1
    assert part.tpdu_length == len(pdu) // 2 - smsc_octets


def test_published_concatenated_submit_user_data() -> None:
    """python-gsmmodem's 3-part message: identical user data headers and packing.

    That vector sets TP-RD and one TP-MR for all parts; we set neither flag and number the parts.
    """
    text = (
        "Lorem ipsum dolor sit amet, consectetur adipisicing elit, sed do eiusmod tempor incididunt ut "
        "labore et dolore magna aliqua.Ut enim ad minim veniam, quinostrud exercitation ullamco laboris "
        "nisi ut aliquip ex ea commodo consequat.Duis aute irure dolor in reprehenderit in voluptate "
        "velit esse cillum doloe eu fugiat nulla pariatur.Excepteur sint occaecat cupidatat non proident, "
        "sunt in culpa qui officia deserunt mollit anim id est laborum"
    )
    expected_tails = [
        "000B915121551532F40000A0050003000301986F79B90D4AC3E7F53688FC66BFE5A0799A0E0AB7CB741668FC76CFCB637A995E9783C2E4343C3D4F8FD3EE33A8CC4ED359A079990C22BF41E5747DDE7E9341F4721BFE9683D2EE719A9C26D7DD74509D0E6287C56F791954A683C86FF65B5E06B5C36777181466A7E3F5B0AB4A0795DDE936284C06B5D3EE741B642FBBD3E1360B14AFA7DD",
        "000B915121551532F40000A0050003000302DE73BABC4E0695F165F9384D0FD3D36F37A8CE6687DBE337881D16BFE5E939C89D9EA741753A28CC4EC7EB6938A88C0795C3A0F1BBDD7E93DFA0F1DB3D2FC7EB61BA8B584FCF41E13ABD0C4ACBEBF23288FC66BFE5A0B41B242FC3E56574D94D2ECBD37450DA0DB2BFD975383D4C2F83EC65769A0E2ACFE765D038CD66D7DB20F29BFD2E83CA",
        "000B915121551532F400008C050003000303EA2073FD9C0ED341EE3A9B1D06C1C3F274985E97BB8AF871194E2FD7E5A079DA4D07BDC7E370791CA683C675789A1CA687E920F7DB0D82CBDF6972D94D6781E675371D947683C675363C0C8AD7D3A0B7D99C1EA7C32072795E96D7DD7450FBCD66A7E9A0B03BDD06A5C9A0F29C0E6287C56F79BD0D",
    ]
    parts = encode_submit("+15125551234", text)
    assert [part.pdu[:6] for part in parts] == ["004100", "004101", "004102"]
    assert [part.pdu[4:] for part in parts] == [f"{index:02X}{tail[2:]}" for index, tail in enumerate(expected_tails)]
    assert "".join(decode_submit("0045" + tail).text for tail in expected_tails) == text


def test_deliver_with_extension_characters() -> None:
    message = decode_deliver("06917228195339040B917228214365F70000313062315352800A800D8A5E98D337A910")
    assert message.text == "@{tést}!"
    assert message.smsc == "2782913593"
    assert message.timestamp == datetime(2013, 3, 26, 13, 35, 25, tzinfo=zone(2))


def test_deliver_long_text_with_zone() -> None:
    message = decode_deliver(
        "07915892000000F0040B915892214365F700007040213252242331493A283D0795C3F33C88FE06C9CB6132885EC6D3"
        "41EDF27C1E3E97E7207B3A0C0A5241E377BB1D7693E72E"
    )
    assert message.text == "It is easy to read text messages via AT commands."
    assert message.sender == "85291234567"
    assert message.timestamp == datetime(2007, 4, 12, 23, 25, 42, tzinfo=zone(8))


def test_ucs2_submit_from_sim_outbox() -> None:
    message = decode_pdu("07914346466554F601000B914316565811F9000806304253F68449")
    assert isinstance(message, Submit)
    assert (message.number, message.text, message.encoding) == ("34616585119", "あ叶葉", "ucs2")


def test_concatenated_deliver_from_short_code() -> None:
    message = decode_deliver(
        "0591721891F1400781721881F800003160526104848059050003C30101916536FB1DCABEEB2074D85E064941B19CAB"
        "060319A5C522289C96D3D3ED32286C0FA7D96131BBEC024941B19CAB0603DDD36C36A88C87A7E565D0DB0D82C55EB0"
        "DB4B068BCD5C20"
    )
    assert message.sender == "2781188"
    assert message.smsc == "2781191"
    assert message.concat == Concat(reference=0xC3, total=1, sequence=1)
    assert message.text == "Hello!You have R 19.50 FREE airtime available. R 19.50 will expire on 01/07/2013. "


def test_eight_bit_submit() -> None:
    message = decode_submit("0591721891F101000B917228214365F700040C48656C6C6F20776F726C6421")
    assert (message.text, message.encoding) == ("Hello world!", "8bit")


def test_submit_with_absolute_validity_is_skipped() -> None:
    message = decode_submit("0019000B917228001011F100003170013193008017D474BB3CA787DB70903DCC4E93D3F43C885E9ED301",
                            has_smsc=True)
    assert message.text == "Timestamp validity test"
    assert message.validity_minutes is None


@pytest.mark.parametrize(
    ("pdu", "sender", "text"),
    [
        ("0791446742949940040BD0C7F7FBCC2E0300008080919075106935D2723BED2697E53A10BD3CA787400010B55E0605"
         "EB67502C078AC1743059B80D6A8162311D4C166E8350D7B77C9D02",
         "Google", "Reminder: test! @ Tue Aug 19 10:02am - 11:02am (Work)"),
        ("07918167830071F1040BD0C7F7FBCC2E030000808010800120804AD0473BED2697D9F3B20E644CCBDBE136835C668"
         "1CCF2B20B147381C2F5B30B04C3E96630500B1483E96030501A34CDB7C5E9B71B847AB2CB2062987D0E87E5E414",
         "Google", "Påmindelse: Firmamøde, fre. 1. aug. 08:30 - 10:00 i Symbion (Ole Dalgaard)"),
        ("07919471071600000412D0D4B03C6D6E25DDE63700008080221233758056B2970C040ABAE5757319947683C86539A8"
         "58D5816438D0B8ECA683E0F237A89976D7E9651068F99ED3CB6EF67B5E0611CBF4709A9D769BDFA0BA9B5E96EB402B"
         "5A2E76BBC564B4598D367301",
         "Tarif-Info", "2/2  Anrufe in der EU: 28 cent pro Minute  Kostenlose Detailinfo unter: +491771243543."),
        # 13 semi-octets hold 7 septets: the eighth septet of the last octet is padding, not "@"
        ("0791447758100650040DD0F334FC1CA6970100008080312170224008D4F29CDE0EA7D9", "sipgate", "Testmail"),
    ],
)
def test_alphanumeric_senders(pdu: str, sender: str, text: str) -> None:
    message = decode_deliver(pdu)
    assert (message.sender, message.text) == (sender, text)


def test_status_report() -> None:
    report = decode_pdu("0006D60B911326880736F4111011719551401110117195714000")
    assert report == StatusReport(
        smsc=None,
        message_reference=214,
        recipient="31628870634",
        submitted=datetime(2011, 1, 11, 17, 59, 15, tzinfo=zone(1)),
        discharged=datetime(2011, 1, 11, 17, 59, 17, tzinfo=zone(1)),
        status=0,
    )
    assert report.delivered and report.final


def test_status_report_with_hash_in_recipient() -> None:
    """A ZTE modem's report: semi-octet 0xB is "#" (TS 24.008 table 10.5.118)."""
    report = decode_status_report("0297F1061C0F910B487228297020F5317062419272803170624192138000")
    assert report.smsc == "1"
    assert report.message_reference == 28
    assert report.recipient == "#08427829207025"
    assert report.discharged == datetime(2013, 7, 26, 14, 29, 31, tzinfo=zone(2))


# --- splitting into parts ----------------------------------------------------------------------

def _parts(text: str, **options) -> list[Submit]:
    return [decode_submit(part.pdu) for part in encode_submit("628123456789", text, **options)]


@pytest.mark.parametrize(
    ("text", "sizes"),
    [
        ("", [""]),
        ("a" * 160, ["a" * 160]),
        ("a" * 161, ["a" * 153, "a" * 8]),
        ("€" * 80, ["€" * 80]),
        ("€" * 81, ["€" * 76, "€" * 5]),  # 153 septets would cut the 77th escape sequence
        ("a" * 152 + "€" * 5, ["a" * 152, "€" * 5]),
        ("ü" * 70 + "x", ["ü" * 70 + "x"]),  # ü is in the default alphabet
        ("世" * 70, ["世" * 70]),
        ("世" * 71, ["世" * 67, "世" * 4]),
        ("x" * 66 + "😀" + "yyy", ["x" * 66, "😀yyy"]),  # the pair would straddle unit 67
    ],
)
def test_split_points(text: str, sizes: list[str]) -> None:
    parts = _parts(text)
    assert [part.text for part in parts] == sizes
    if len(parts) > 1:
        assert [part.concat for part in parts] == [Concat(0, len(parts), n) for n in range(1, len(parts) + 1)]
    else:
        assert parts[0].concat is None


def test_sixteen_bit_reference_leaves_room_for_one_unit_less() -> None:
    parts = encode_submit("628123456789", "a" * 305, concat_reference=384, reference_16bit=True)
    # UDHL 6, IEI 08, length 4, reference 0x0180, total, sequence (23.040 clause 9.2.3.24.8)
    assert parts[0].pdu[26:42] == "A006080401800301"
    decoded = [decode_submit(part.pdu) for part in parts]
    assert [len(part.text) for part in decoded] == [152, 152, 1]
    assert decoded[0].concat == Concat(384, 3, 1)
    ucs2 = [decode_submit(part.pdu).text for part in
            encode_submit("628123456789", "世" * 71, reference_16bit=True, concat_reference=65535)]
    assert [len(text) for text in ucs2] == [66, 5]


def test_submit_flags_and_references() -> None:
    parts = encode_submit("628123456789", "a" * 200, status_report=True, message_reference=255,
                          concat_reference=7, validity_minutes=60, smsc="6281100000")
    decoded = [decode_submit(part.pdu) for part in parts]
    assert [part.message_reference for part in decoded] == [255, 0]
    assert all(part.status_report for part in decoded)
    assert all(part.validity_minutes == 60 for part in decoded)
    assert decoded[1].concat == Concat(7, 2, 2)
    # SMSC, then TP-MTI SUBMIT + TP-VPF relative + TP-SRR + TP-UDHI, TP-MR 255
    assert parts[0].pdu.startswith("0691261801000071FF")


@pytest.mark.parametrize(
    ("number", "text", "options"),
    [
        ("Google", "hi", {}),
        ("", "hi", {}),
        ("628123456789", "hi", {"message_reference": 256}),
        ("628123456789", "a" * 200, {"concat_reference": 256}),
        ("628123456789", "a" * 200, {"concat_reference": -1}),
        ("628123456789", "a" * 200, {"concat_reference": 65536, "reference_16bit": True}),
        ("628123456789", "hi", {"validity_minutes": 0}),
        ("628123456789", "hi", {"smsc": "SMSC"}),
        ("628123456789", "lone \ud800 surrogate", {}),
        ("628123456789", "a" * (255 * 153 + 1), {}),
    ],
)
def test_submit_refuses_bad_arguments(number: str, text: str, options: dict) -> None:
    with pytest.raises(ValueError):
        encode_submit(number, text, **options)


def test_longest_possible_message() -> None:
    parts = encode_submit("628123456789", "a" * (255 * 153))
    assert len(parts) == 255


# --- encoders for the simulator ----------------------------------------------------------------

@pytest.mark.parametrize("sender", ["Google", "OTP-Pi", "+6281234567890", "6281234567890", "3636", "a[]{}€"])
def test_deliver_round_trip_senders(sender: str) -> None:
    [pdu] = encode_deliver(sender, "Kode OTP 123456", WHEN)
    message = decode_deliver(pdu)
    assert message == Deliver(smsc="6281100000", sender=sender.removeprefix("+"), timestamp=WHEN,
                              text="Kode OTP 123456", concat=None, encoding="gsm7")


def test_deliver_without_smsc_and_multipart() -> None:
    pdus = encode_deliver("Bank", "Saldo 😀 " * 20, WHEN, smsc=None, concat_reference=200)
    messages = [decode_pdu(pdu) for pdu in pdus]
    assert all(isinstance(message, Deliver) and message.smsc is None for message in messages)
    assert [message.concat for message in messages] == [Concat(200, 3, n) for n in (1, 2, 3)]
    assert "".join(message.text for message in messages) == "Saldo 😀 " * 20
    assert decode_deliver(pdus[0][2:], has_smsc=False).text == messages[0].text


@pytest.mark.parametrize(
    ("status", "delivered", "final"),
    [(0x00, True, True), (0x01, True, True), (0x02, True, True), (0x03, False, True), (0x1F, False, True),
     (0x20, False, False), (0x30, False, False), (0x3F, False, False), (0x40, False, True),
     (0x5F, False, True), (0x60, False, True), (0x7F, False, True), (0xFF, False, True)],
)
def test_status_report_round_trip_and_verdicts(status: int, delivered: bool, final: bool) -> None:
    later = WHEN + timedelta(seconds=42)
    pdu = encode_status_report(17, "628123456789", status, WHEN, later)
    report = decode_status_report(pdu)
    assert (report.message_reference, report.recipient, report.status) == (17, "628123456789", status)
    assert (report.submitted, report.discharged) == (WHEN, later)
    assert (report.delivered, report.final) == (delivered, final)
    assert report.smsc == "6281100000"


def test_status_report_refuses_bad_arguments() -> None:
    with pytest.raises(ValueError):
        encode_status_report(256, "628123456789", 0, WHEN, WHEN)
    with pytest.raises(ValueError):
        encode_status_report(1, "628123456789", 256, WHEN, WHEN)


def test_decode_pdu_dispatches_on_mti() -> None:
    assert isinstance(decode_pdu(encode_deliver("Bank", "x", WHEN)[0]), Deliver)
    assert isinstance(decode_pdu(encode_status_report(1, "3636", 0, WHEN, WHEN)), StatusReport)
    assert isinstance(decode_pdu(encode_submit("3636", "x")[0].pdu), Submit)


def test_typed_decoders_refuse_other_types() -> None:
    deliver = encode_deliver("Bank", "x", WHEN)[0]
    with pytest.raises(PduError, match="not an SMS-SUBMIT"):
        decode_submit(deliver)
    with pytest.raises(PduError, match="not an SMS-STATUS-REPORT"):
        decode_status_report(deliver)
    with pytest.raises(PduError, match="not an SMS-DELIVER"):
        decode_deliver(encode_submit("3636", "x")[0].pdu)


# --- properties --------------------------------------------------------------------------------

def _user_data_octets(tpdu_length: int, validity: bool) -> int:
    """Octets after TP-UDL in a SUBMIT to 628123456789 (8-octet TP-DA)."""
    return tpdu_length - (2 + 8 + 2 + (1 if validity else 0) + 1)


def _check_submit_round_trip(text: str, **options) -> None:
    parts = encode_submit("628123456789", text, **options)
    decoded = [decode_submit(part.pdu) for part in parts]
    assert "".join(part.text for part in decoded) == text
    for part, message in zip(parts, decoded, strict=True):
        assert part.pdu == part.pdu.upper()
        assert part.tpdu_length == len(part.pdu) // 2 - 1
        assert _user_data_octets(part.tpdu_length, "validity_minutes" in options) <= 140
        message.text.encode("utf-8")  # no half of a surrogate pair in any part
        assert message.number == "628123456789"
    if len(parts) > 1:
        assert [message.concat.sequence for message in decoded] == list(range(1, len(parts) + 1))
        assert {(message.concat.reference, message.concat.total) for message in decoded} == {
            (options.get("concat_reference", 0), len(parts))
        }
    else:
        assert decoded[0].concat is None


@PROPERTY
@given(ANY_TEXT, st.integers(0, 255), st.booleans())
def test_any_text_round_trips(text: str, reference: int, reference_16bit: bool) -> None:
    _check_submit_round_trip(text, concat_reference=reference, reference_16bit=reference_16bit)


@PROPERTY
@given(GSM_TEXT, st.integers(0, 255), st.integers(1, 63 * 7 * 24 * 60))
def test_gsm_text_round_trips_as_septets(text: str, reference: int, validity: int) -> None:
    _check_submit_round_trip(text, concat_reference=reference, validity_minutes=validity)
    assert all(decode_submit(part.pdu).encoding == "gsm7" for part in encode_submit("3636", text))


@PROPERTY
@given(
    st.one_of(ANY_TEXT, GSM_TEXT),
    st.one_of(
        st.from_regex(r"[A-Za-z][A-Za-z0-9 ]{0,10}", fullmatch=True),
        st.from_regex(r"\+?[0-9]{1,20}", fullmatch=True),
    ),
    st.datetimes(min_value=datetime(2000, 1, 1), max_value=datetime(2099, 12, 31),
                 timezones=st.integers(-79, 79).map(lambda q: timezone(timedelta(minutes=15 * q)))),
    st.integers(0, 255),
)
def test_deliver_round_trips(text: str, sender: str, moment: datetime, reference: int) -> None:
    pdus = encode_deliver(sender, text, moment, concat_reference=reference)
    messages = [decode_deliver(pdu) for pdu in pdus]
    assert "".join(message.text for message in messages) == text
    for message in messages:
        assert message.sender == sender.removeprefix("+")
        assert message.timestamp == moment.replace(microsecond=0)
        assert message.timestamp.utcoffset() == moment.utcoffset()
