"""The AT session against simulated modems, through real pyserial on ptys."""

from __future__ import annotations

import threading

import pytest

from otppi.modem import pdu
from otppi.modem.at import (
    AtSession,
    Urc,
    changes_echo,
    final_outcome,
    match_urc,
    response_value,
)
from otppi.modem.errors import (
    CmeError,
    CmsError,
    CommandError,
    DialError,
    ModemClosed,
    ModemError,
    ModemTimeout,
    parse_error_line,
)
from otppi.modem.gsm7 import decode_gsm7, encode_gsm7, pack_septets, unpack_septets

RECIPIENT = "+628123456789"


def submit_part(text: str = "Your code is 123456", **kwargs: object) -> pdu.SubmitPart:
    return pdu.encode_submit(RECIPIENT, text, **kwargs)[0]


# -- plain commands and echo ---------------------------------------------------------------------

@pytest.mark.parametrize("echo", ["ATE1", "ATE0"])
def test_answers_are_the_same_with_echo_on_or_off(modem, connect, echo):
    conn = connect(modem)
    conn.command(echo)
    assert conn.command("AT+CGMI") == ["SIMCOM_Ltd"]
    assert conn.command("AT+CSQ") == ["+CSQ: 20,99"]
    assert conn.command("AT") == []
    assert modem.call(lambda: modem.settings.echo) is (echo == "ATE1")


def test_an_answer_line_equal_to_the_command_is_kept_when_echo_is_off(modem, connect):
    conn = connect(modem)
    conn.command("ATE0")
    modem.interleave_urc("RING")  # not an answer line: must not count as the "echo"
    assert conn.command("AT+CGMM") == ["SIMCOM_SIM800L"]


def test_unknown_command_is_a_plain_command_error(conn):
    with pytest.raises(CommandError) as caught:
        conn.command("AT+NOSUCH")
    assert type(caught.value) is CommandError
    assert caught.value.command == "AT+NOSUCH"


# -- typed errors ---------------------------------------------------------------------------------

@pytest.mark.parametrize("cmee", [1, 2])
def test_cme_errors_numeric_and_verbose_map_to_the_same_code(conn, cmee):
    conn.command(f"AT+CMEE={cmee}")
    with pytest.raises(CmeError) as caught:
        conn.command('AT+CLCK="XX",2')
    assert caught.value.code == 4
    assert caught.value.text == "operation not supported"


def test_cme_errors_are_plain_errors_at_cmee_0(conn):
    conn.command("AT+CMEE=0")
    with pytest.raises(CommandError) as caught:
        conn.command('AT+CLCK="XX",2')
    assert not isinstance(caught.value, CmeError)


@pytest.mark.parametrize("cmee", [1, 2])
def test_cms_error_on_send_is_typed_and_transient(modem, conn, cmee):
    conn.command(f"AT+CMEE={cmee}")
    modem.fail_sends(1, code=38)
    part = submit_part()
    with pytest.raises(CmsError) as caught:
        conn.session.send_pdu(part.tpdu_length, part.pdu, timeout=2)
    assert caught.value.code == 38
    assert caught.value.transient
    # the fault was for one send only
    assert conn.session.send_pdu(part.tpdu_length, part.pdu, timeout=2) == 0


def test_parse_error_line_accepts_numeric_verbose_and_unknown_forms():
    assert parse_error_line("+CME ERROR: 14").code == 14
    assert parse_error_line("+CME ERROR: SIM busy").code == 14
    assert parse_error_line("+CMS ERROR: SMSC address unknown").code == 330
    assert parse_error_line("+CMS ERROR: 520").text == "manufacturer specific"
    odd = parse_error_line("+CME ERROR: Something vendor specific")
    assert isinstance(odd, CmeError) and odd.code is None and odd.text == "Something vendor specific"
    assert parse_error_line("+CMGS: 4") is None


def test_final_outcomes():
    assert final_outcome("OK") == (True, None)
    assert final_outcome("CONNECT 7200000") == (True, None)
    assert final_outcome("+CSQ: 20,99") == (False, None)
    assert isinstance(final_outcome("NO CARRIER", command="ATD*99#")[1], DialError)
    assert isinstance(final_outcome("COMMAND NOT SUPPORT")[1], CommandError)
    assert isinstance(final_outcome("+CMS ERROR: 500")[1], CmsError)


# -- unsolicited result codes -------------------------------------------------------------------

@pytest.mark.parametrize("line", ['+CMTI: "SM",7', '+CUSD: 0,"Sisa pulsa Rp 1.000",15', "RING",
                                  "^RSSI: 17", "+CREG: 5"])
def test_a_urc_inside_an_answer_goes_to_the_handler(modem, conn, line):
    modem.receive_sms("+62811000111", "first")
    modem.receive_sms("+62811000222", "second")
    conn.urcs.wait_for("+CMTI:")
    conn.urcs.wait_for("+CMTI:")
    modem.interleave_urc(line)
    lines = conn.command("AT+CMGL=4")
    assert [entry.split(",")[0] for entry in lines[::2]] == ["+CMGL: 1", "+CMGL: 2"]
    assert line not in lines and len(lines) == 4
    assert conn.urcs.wait_for(match_urc(line, None).prefix).line == line


def test_a_two_line_urc_inside_an_answer_keeps_its_pdu(modem, conn):
    report = pdu.encode_status_report(9, "628123456789", 0, *[pdu.decode_timestamp(
        bytes.fromhex("62118251000000"))] * 2)
    length = len(bytes.fromhex(report)) - 1 - bytes.fromhex(report)[0]
    modem.interleave_urc(f"+CDS: {length}", report)
    assert conn.command("AT+CGMI") == ["SIMCOM_Ltd"]
    urc = conn.urcs.wait_for("+CDS:")
    assert urc.data == (report,)
    assert pdu.decode_status_report(urc.data[0]).message_reference == 9


def test_a_solicited_prefix_is_an_answer_during_its_own_command(modem, conn):
    modem.interleave_urc("+CREG: 2")
    assert conn.command("AT+CREG?") == ["+CREG: 0,1", "+CREG: 2"]
    modem.interleave_urc("+CREG: 2")
    assert conn.command("AT+CSQ") == ["+CSQ: 20,99"]
    assert conn.urcs.wait_for("+CREG:").value == "2"


def test_a_urc_crossing_a_read_command_with_its_prefix_stays_a_urc(modem, conn):
    conn.command("AT")  # the session has seen the echo: echo is on
    modem.cross_next_command("+CPIN: READY")
    assert conn.command("AT+CPIN?") == ["+CPIN: READY"]
    assert conn.urcs.wait_for("+CPIN:").line == "+CPIN: READY"


def test_echo_changes_are_relearned(modem, conn):
    """After ATE0 nothing is known about echo, so a read command's answer is never taken for a
    URC for want of an echo."""
    conn.command("AT")
    conn.command("ATE0")
    assert conn.command("AT+CPIN?") == ["+CPIN: READY"]
    assert conn.command("AT+CREG?") == ["+CREG: 0,1"]


@pytest.mark.parametrize("command,changes", [
    ("ATE0", True), ("ATE1", True), ("ATZ", True), ("AT&F", True), ("ATQ0 V1 E1 S0=0", True),
    ("AT+CPIN?", False), ("ATD*99#", False), ("AT+CEER", False), ("AT^SYSINFO", False),
])
def test_which_commands_may_switch_echo(command, changes):
    assert changes_echo(command) is changes


def test_the_handler_may_send_commands_and_read_the_new_sms(modem, conn):
    read = []
    done = threading.Event()

    def on_urc(urc: Urc) -> None:
        if urc.prefix == "+CMTI:":
            index = urc.value.split(",")[1]
            read.append(conn.session.command(f"AT+CMGR={index}", 2))
            done.set()

    conn.session.urc_handler = on_urc
    modem.receive_sms("+62811000111", "hello from the network")
    assert done.wait(3)
    header, body = read[0]
    assert header.startswith("+CMGR: 0,,")
    assert pdu.decode_deliver(body).text == "hello from the network"


def test_a_failing_handler_does_not_stop_later_urcs(modem, conn, caplog):
    seen = conn.urcs

    def flaky(urc: Urc) -> None:
        if urc.line == "RING":
            raise RuntimeError("handler bug")
        seen.put(urc)

    conn.session.urc_handler = flaky
    modem.emit("RING")
    modem.emit("+CRING: VOICE")
    assert seen.wait_for("+CRING:").value == "VOICE"
    assert "handler bug" in caplog.text


def test_urcs_between_commands_are_delivered(modem, conn):
    modem.emit("RING")
    assert conn.urcs.wait_for("RING").line == "RING"


# -- SIM start-up, PIN, locks ---------------------------------------------------------------------

def test_sim_busy_after_power_up_until_the_sim_is_ready(modem, conn):
    modem.power_cycle(sim_busy_seconds=60)
    conn.urcs.wait_for("RDY")
    conn.command("AT+CMEE=1")  # a power cycle resets it
    with pytest.raises(CmeError) as caught:
        conn.command("AT+CPIN?")
    assert caught.value.code == 14 and caught.value.transient
    with pytest.raises(CmsError) as sms_busy:
        conn.command('AT+CPMS="SM","SM","SM"')
    assert sms_busy.value.code == 314
    modem.end_sim_busy()
    assert conn.urcs.wait_for("+CPIN:").value == "READY"
    assert conn.command("AT+CPIN?") == ["+CPIN: READY"]


def test_sim_busy_ends_by_itself(modem, conn):
    modem.power_cycle(sim_busy_seconds=0.05)
    assert conn.urcs.wait_for("+CPIN:").value == "READY"
    conn.urcs.wait_for("SMS Ready")
    assert conn.command("AT+CPIN?") == ["+CPIN: READY"]


def test_pin_entry(make_simulator, connect):
    modem = make_simulator(pin="4321")[0]
    conn = connect(modem)
    conn.command("AT+CMEE=1")
    assert conn.command("AT+CPIN?") == ["+CPIN: SIM PIN"]
    with pytest.raises(CmeError) as locked:
        conn.command("AT+CIMI")
    assert locked.value.code == 11
    with pytest.raises(CmeError) as wrong:
        conn.command('AT+CPIN="0000"')
    assert wrong.value.code == 16
    assert conn.command('AT+CPIN="4321"') == []
    assert conn.urcs.wait_for("+CPIN:").value == "READY"
    assert conn.command("AT+CIMI") == [modem.sim.imsi]


def test_three_wrong_pins_need_the_puk(make_simulator, connect):
    modem = make_simulator(pin="4321")[0]
    conn = connect(modem)
    conn.command("AT+CMEE=1")
    codes = []
    for _ in range(3):
        with pytest.raises(CmeError) as wrong:
            conn.command("AT+CPIN=1111")
        codes.append(wrong.value.code)
    assert codes == [16, 16, 12]
    assert conn.command("AT+CPIN?") == ["+CPIN: SIM PUK"]
    conn.command(f'AT+CPIN="{modem.sim.puk}","2468"')
    assert conn.command("AT+CPIN?") == ["+CPIN: READY"]
    assert modem.sim.pin == "2468"


def test_clck_and_cpwd_set_change_and_remove_the_pin(modem, conn):
    assert conn.command('AT+CLCK="SC",2') == ["+CLCK: 0"]
    with pytest.raises(CmeError) as not_locked:
        conn.command('AT+CPWD="SC","1234","5678"')
    assert not_locked.value.code == 3
    conn.command('AT+CLCK="SC",1,"1234"')
    assert conn.command('AT+CLCK="SC",2') == ["+CLCK: 1"]
    conn.command('AT+CPWD="SC","1234","5678"')
    with pytest.raises(CmeError) as wrong:
        conn.command('AT+CLCK="SC",0,"1234"')
    assert wrong.value.code == 16
    conn.command('AT+CLCK="SC",0,"5678"')
    assert conn.command('AT+CLCK="SC",2') == ["+CLCK: 0"]


def test_a_pin_set_with_clck_is_asked_after_a_power_cycle(modem, conn):
    conn.command('AT+CLCK="SC",1,"1234"')
    modem.power_cycle(sim_busy_seconds=0)
    assert conn.urcs.wait_for("+CPIN:").value == "SIM PIN"
    conn.command("AT+CPIN=1234")
    assert conn.urcs.wait_for("+CPIN:").value == "READY"


# -- sending ------------------------------------------------------------------------------------

@pytest.mark.parametrize("echo", ["ATE1", "ATE0"])
def test_send_pdu_returns_the_message_reference(modem, conn, echo):
    conn.command(echo)
    first, second = submit_part("one"), submit_part("two")
    assert conn.session.send_pdu(first.tpdu_length, first.pdu, timeout=2) == 0
    assert conn.session.send_pdu(second.tpdu_length, second.pdu, timeout=2) == 1
    sent = modem.wait_for_sent(2)
    assert [(m.number, m.text) for m in sent] == [("628123456789", "one"), ("628123456789", "two")]
    assert conn.command("AT") == []  # nothing of the send is left over


def test_send_pdu_waits_out_the_network_delay(modem, conn):
    modem.set_network_delay(0.1)
    part = submit_part()
    assert conn.session.send_pdu(part.tpdu_length, part.pdu, timeout=3) == 0
    modem.set_network_delay(2.0)
    with pytest.raises(ModemTimeout):
        conn.session.send_pdu(part.tpdu_length, part.pdu, timeout=0.2)


def test_an_error_instead_of_the_prompt_raises(make_simulator, connect):
    modem = make_simulator(pin="4321")[0]
    conn = connect(modem)
    part = submit_part()
    with pytest.raises(CmsError) as caught:
        conn.session.send_pdu(part.tpdu_length, part.pdu, timeout=2)
    assert caught.value.code == 311


def test_a_wrong_length_is_an_invalid_pdu(conn):
    part = submit_part()
    with pytest.raises(CmsError) as caught:
        conn.session.send_pdu(part.tpdu_length + 1, part.pdu, timeout=2)
    assert caught.value.code == 304


def test_send_pdu_refuses_what_is_not_hex(conn):
    with pytest.raises(ValueError):
        conn.session.send_pdu(10, "not hex", timeout=1)


def test_command_with_expect_prompt_needs_data(conn):
    with pytest.raises(ValueError):
        conn.session.command("AT+CMGS=10", 1, expect_prompt=True)


def test_status_report_arrives_as_a_two_line_urc(modem, conn):
    conn.command("AT+CNMI=2,1,0,1,0")
    part = submit_part(status_report=True)
    reference = conn.session.send_pdu(part.tpdu_length, part.pdu, timeout=2)
    urc = conn.urcs.wait_for("+CDS:")
    report = pdu.decode_status_report(urc.data[0])
    assert (report.message_reference, report.recipient, report.delivered) == (
        reference, "628123456789", True)


# -- timeouts and a lost port --------------------------------------------------------------------

def test_a_silent_modem_times_out_and_the_session_recovers(modem, conn):
    modem.go_silent()
    with pytest.raises(ModemTimeout):
        conn.command("AT+CSQ", timeout=0.2)
    part = submit_part()
    with pytest.raises(ModemTimeout):
        conn.session.send_pdu(part.tpdu_length, part.pdu, timeout=0.2)
    modem.answer_again()
    assert conn.command("AT+CGMI") == ["SIMCOM_Ltd"]
    assert conn.session.send_pdu(part.tpdu_length, part.pdu, timeout=2) == 0


def test_a_late_prompt_is_abandoned_and_the_session_goes_on(modem, conn):
    modem.set_prompt_delay(5.0)
    part = submit_part()
    with pytest.raises(ModemTimeout):
        conn.session.send_pdu(part.tpdu_length, part.pdu, timeout=0.2)
    modem.set_prompt_delay(0)
    assert conn.command("AT+CGMI") == ["SIMCOM_Ltd"]
    assert conn.session.send_pdu(part.tpdu_length, part.pdu, timeout=2) == 0
    assert modem.sent.parts()[0].text == "Your code is 123456"


def test_unplug_raises_modem_closed_for_the_command_in_flight(modem, conn):
    modem.go_silent()
    outcome: list[BaseException] = []

    def run() -> None:
        try:
            conn.command("AT+CSQ", timeout=10)
        except ModemError as exc:
            outcome.append(exc)

    worker = threading.Thread(target=run)
    worker.start()
    modem.wait_for_input(b"AT+CSQ\r")
    modem.unplug()
    worker.join(5)
    assert not worker.is_alive()
    assert isinstance(outcome[0], ModemClosed)
    assert conn.lost.wait(3) and conn.lost_reason is not None
    with pytest.raises(ModemClosed):
        conn.command("AT")
    assert conn.session.closed


def test_close_does_not_report_a_lost_port(modem, connect):
    conn = connect(modem)
    conn.close()
    assert conn.session.closed and not conn.lost.is_set()
    with pytest.raises(ModemClosed):
        conn.command("AT")


# -- USSD, IMEI, dial-up, messages on the SIM -----------------------------------------------------

def test_ussd_single_reply_and_menu_session(conn):
    assert conn.command('AT+CUSD=1,"*888#",15') == []
    assert conn.urcs.wait_for("+CUSD:").value == '0,"Sisa pulsa Anda Rp 25.000. Aktif s/d 31-12-2026.",15'
    conn.command('AT+CUSD=1,"*123#",15')
    menu = conn.urcs.wait_for("+CUSD:")
    assert menu.value == '1,"1 Paket Internet\n2 Info Pulsa",15'
    conn.command('AT+CUSD=1,"1",15')
    assert conn.urcs.wait_for("+CUSD:").value.startswith('1,"1 10GB')
    conn.command('AT+CUSD=1,"2",15')
    assert conn.urcs.wait_for("+CUSD:").value == '0,"Paket 25GB aktif.",15'
    conn.command('AT+CUSD=1,"*999#",15')
    assert conn.urcs.wait_for("+CUSD:").value == "4"


def test_ussd_cancel_ends_the_session(conn):
    conn.command('AT+CUSD=1,"*123#",15')
    assert conn.urcs.wait_for("+CUSD:").value.startswith("1,")
    conn.command("AT+CUSD=2")
    conn.command('AT+CUSD=1,"2",15')  # no session: "2" is an unknown code now
    assert conn.urcs.wait_for("+CUSD:").value == "4"


def test_ussd_on_huawei_travels_as_packed_gsm7(make_simulator, connect):
    conn = connect(make_simulator(profiles="huawei-e173")[0])
    code = pack_septets(encode_gsm7("*888#")).hex().upper()
    conn.command(f'AT+CUSD=1,"{code}",15')
    mode, packed, dcs = conn.urcs.wait_for("+CUSD:").value.split(",")
    data = bytes.fromhex(packed.strip('"'))
    assert decode_gsm7(unpack_septets(data, len(data) * 8 // 7)).startswith("Sisa pulsa Anda")


def test_egmr_writes_the_imei_where_the_modem_has_it(make_simulator, connect):
    simulator = make_simulator(2, ["ec25", "wavecom"])
    with_egmr, without = connect(simulator[0]), connect(simulator[1])
    with_egmr.command('AT+EGMR=1,7,"867675040000123"')
    assert with_egmr.command("AT+CGSN") == ["867675040000123"]
    assert with_egmr.command("AT+EGMR=0,7") == ['+EGMR: "867675040000123"']
    without.command("AT+CMEE=1")
    with pytest.raises(CommandError) as refused:
        without.command('AT+EGMR=1,7,"867675040000123"')
    assert type(refused.value) is CommandError
    assert without.command("AT+CGSN") == [simulator[1].imei]


def test_dial_up_connect_and_no_carrier(modem, conn):
    assert conn.command("ATD*99#") == []
    assert conn.command("+++") == []  # the escape from data mode answers OK
    assert conn.command("ATH") == []
    modem.call(setattr, modem, "dial_result", "NO CARRIER")
    with pytest.raises(DialError) as caught:
        conn.command("ATD*99***1#")
    assert caught.value.result == "NO CARRIER"


def test_cmgl_cmgr_cmgd(modem, conn):
    first = modem.receive_sms("+62811000111", "first")
    second = modem.receive_sms("Telkomsel", "second")
    lines = conn.command("AT+CMGL=4")
    texts = [pdu.decode_deliver(line).text for line in lines[1::2]]
    assert texts == ["first", "second"]
    assert pdu.decode_deliver(lines[3]).sender == "Telkomsel"
    assert conn.command("AT+CMGL=0") == []  # listing marked both read
    header, body = conn.command(f"AT+CMGR={first[0]}")
    assert header.startswith("+CMGR: 1,,") and pdu.decode_deliver(body).text == "first"
    conn.command(f"AT+CMGD={first[0]}")
    assert conn.command(f"AT+CMGR={first[0]}") == []
    assert len(conn.command("AT+CMGL=4")) == 2
    with pytest.raises(CmsError) as caught:
        conn.command("AT+CMGR=999")
    assert caught.value.code == 321
    conn.command("AT+CMGD=1,4")
    assert conn.command("AT+CMGL=4") == [] and second


def test_response_value():
    assert response_value(["+CSQ: 20,99"], "+CSQ") == "20,99"
    assert response_value(["x"], "+CSQ") is None


def test_session_used_as_context_manager_closes_the_port(modem):
    from otppi.modem.port import PortSettings, open_port

    port = open_port(PortSettings(modem.path, read_timeout=0.2))
    with AtSession(port) as session:
        assert session.command("AT", 2) == []
    assert not port.is_open
