"""The simulator itself: bytes on the wire, profiles, SMS routing, links, control socket, CLI."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
from pathlib import Path

import pytest
import serial

from otppi.modem import pdu
from otppi.modem.errors import CmeError, CmsError, CommandError, ModemClosed
from otppi.modem.simulator import PROFILES, Simulator
from otppi.modem.simulator.control import request
from otppi.modem.simulator.parser import parse_line
from otppi.modem.simulator.profiles import (
    default_imei,
    get_profile,
    luhn_digit,
    swapped_iccid,
)

REPO = Path(__file__).resolve().parents[2]


def test_echo_on_the_wire(modem):
    with serial.Serial(modem.path, timeout=2) as port:
        port.write(b"AT\r")
        assert port.read_until(b"OK\r\n") == b"AT\r\r\nOK\r\n"
        port.write(b"ATE0\r")
        assert port.read_until(b"OK\r\n") == b"ATE0\r\r\nOK\r\n"
        port.write(b"AT+CSQ\r")
        assert port.read_until(b"OK\r\n") == b"\r\n+CSQ: 20,99\r\n\r\nOK\r\n"


def test_prompt_and_send_on_the_wire(modem):
    part = pdu.encode_submit("+628123456789", "wire")[0]
    with serial.Serial(modem.path, timeout=2) as port:
        port.write(b"ATE0\r")
        port.read_until(b"OK\r\n")
        port.write(f"AT+CMGS={part.tpdu_length}\r".encode())
        assert port.read_until(b"> ") == b"\r\n> "
        port.write(part.pdu.encode() + b"\x1a")
        assert port.read_until(b"OK\r\n") == b"\r\n+CMGS: 0\r\n\r\nOK\r\n"
    assert modem.wait_for_sent(1)[0].text == "wire"


def test_parser_splits_basic_and_extended_commands():
    names = [c.name for c in parse_line("ATQ0 V1 E1 S0=0 &C1 &D2 +FCLASS=0")]
    assert names == ["Q", "V", "E", "S0", "&C", "&D", "+FCLASS"]
    cmgf, cnmi = parse_line("at+cmgf=0;+CNMI=2,1,0,0,0")
    assert (cmgf.name, cmgf.op, cmgf.args) == ("+CMGF", "=", ["0"])
    assert cnmi.args == ["2", "1", "0", "0", "0"]
    (cusd,) = parse_line('AT+CUSD=1,"*1;2#",15')
    assert cusd.args == ["1", "*1;2#", "15"]
    assert parse_line("ATD*99***1#")[0].raw == "*99***1#"
    assert [(c.name, c.op) for c in parse_line("AT^ICCID?")] == [("^ICCID", "?")]
    assert parse_line("AT")[0].name == ""
    with pytest.raises(ValueError):
        parse_line("HELLO")


@pytest.mark.parametrize("name", sorted(PROFILES))
def test_each_profile_answers_as_its_modem(make_simulator, connect, name):
    modem = make_simulator(profiles=name)[0]
    conn = connect(modem)
    profile = get_profile(name)
    assert conn.command("AT+CGMI") == [profile.manufacturer]
    assert conn.command("AT+CGMM") == [profile.model]
    assert conn.command("AT+CGMR") == [profile.revision]
    assert conn.command("AT+CGSN") == [modem.imei]
    iccid_command = {"+CCID": "AT+CCID", "+QCCID": "AT+QCCID", "^ICCID": "AT^ICCID?"}
    (line,) = conn.command(iccid_command[profile.iccid_command])
    assert modem.sim.iccid in line or swapped_iccid(modem.sim.iccid) in line
    for other in set(iccid_command) - {profile.iccid_command}:
        with pytest.raises(CommandError):
            conn.command(iccid_command[other])
    modem.receive_sms("+62811000111", "index check")
    assert conn.urcs.wait_for("+CMTI:").value == f'"SM",{profile.first_index}'


def test_identities_pass_their_check_digits(modem):
    assert luhn_digit(modem.imei[:-1]) == modem.imei[-1]
    assert luhn_digit(modem.sim.iccid[:-1]) == modem.sim.iccid[-1]
    assert default_imei(get_profile("ec25"), 3) != default_imei(get_profile("ec25"), 4)
    assert swapped_iccid("8962") == "9826"
    with pytest.raises(ValueError):
        get_profile("nokia-3310")


def test_operator_and_number(conn):
    assert conn.command("AT+COPS?") == ['+COPS: 0,0,"TELKOMSEL"']
    conn.command("AT+COPS=3,2")
    assert conn.command("AT+COPS?") == ['+COPS: 0,2,"51010"']
    assert conn.command("AT+CNUM") == ['+CNUM: "","+628110000000",145']
    assert conn.command("AT+CSCA?") == ['+CSCA: "+6281100000",145']
    conn.command('AT+CSCA="+62816124",145')
    assert conn.command("AT+CSCA?") == ['+CSCA: "+62816124",145']


def test_sim_busy_from_the_constructor(make_simulator, connect):
    modem = make_simulator(sim_busy_seconds=60)[0]
    conn = connect(modem)
    conn.command("AT+CMEE=2")
    with pytest.raises(CmeError) as caught:
        conn.command("AT+CIMI")
    assert caught.value.code == 14 and caught.value.text == "SIM busy"
    modem.end_sim_busy()
    conn.urcs.wait_for("SMS Ready")
    assert conn.command("AT+CIMI") == [modem.sim.imsi]


def test_cfun_reset_powers_the_modem_up_again(modem, conn):
    conn.command("ATE0")
    conn.command("AT+CFUN=1,1")
    conn.urcs.wait_for("RDY")
    conn.urcs.wait_for("Call Ready")
    assert modem.call(lambda: modem.settings.echo) is True


def test_text_mode_sends_are_refused(conn):
    conn.command("AT+CMGF=1")
    with pytest.raises(CmsError) as caught:
        conn.session.send_pdu(10, "00" * 11, timeout=2)
    assert caught.value.code == 302


def test_no_smsc_anywhere_is_smsc_address_unknown(modem, conn):
    modem.sim.smsc = ""
    part = pdu.encode_submit("+628123456789", "x")[0]
    with pytest.raises(CmsError) as caught:
        conn.session.send_pdu(part.tpdu_length, part.pdu, timeout=2)
    assert caught.value.code == 330


def test_concatenated_send_is_recorded_as_one_message(modem, conn):
    text = "OTP-Pi " * 40
    parts = pdu.encode_submit("+628123456789", text, concat_reference=77)
    assert len(parts) == 2
    references = [conn.session.send_pdu(p.tpdu_length, p.pdu, timeout=2) for p in parts]
    (message,) = modem.wait_for_sent(1)
    assert (message.text, message.parts, message.message_references) == (text, 2, tuple(references))
    assert len(modem.sent.parts()) == 2


def test_long_inbound_sms_is_stored_in_parts(modem, conn):
    text = "Halo " * 50
    indexes = modem.receive_sms("+62811000111", text)
    assert len(indexes) == 2
    delivered = []
    for index in indexes:
        assert conn.urcs.wait_for("+CMTI:").value == f'"SM",{index}'
        _header, body = conn.command(f"AT+CMGR={index}")
        delivered.append(pdu.decode_deliver(body))
    assert "".join(d.text for d in delivered) == text
    assert {d.concat.reference for d in delivered} == {delivered[0].concat.reference}


def test_cnmi_mt_2_routes_messages_without_storing(modem, conn):
    conn.command("AT+CNMI=2,2,0,0,0")
    assert modem.receive_sms("+62811000111", "routed") == []
    urc = conn.urcs.wait_for("+CMT:")
    assert pdu.decode_deliver(urc.data[0]).text == "routed"
    assert conn.command("AT+CMGL=4") == []


def test_cnmi_ds_2_stores_status_reports(modem, conn):
    conn.command("AT+CNMI=2,1,0,2,0")
    part = pdu.encode_submit("+628123456789", "report me", status_report=True)[0]
    reference = conn.session.send_pdu(part.tpdu_length, part.pdu, timeout=2)
    index = int(conn.urcs.wait_for("+CDSI:").value.split(",")[1])
    _header, body = conn.command(f"AT+CMGR={index}")
    assert pdu.decode_status_report(body).message_reference == reference
    assert modem.send_status_report(reference, status=0x40) == index + 1


def test_full_storage_refuses_more_messages(make_simulator):
    modem = make_simulator(profiles="wavecom")[0]
    for number in range(modem.profile.storage_slots):
        modem.receive_sms("+62811000111", f"message {number}")
    with pytest.raises(OverflowError):
        modem.receive_sms("+62811000111", "one too many")


def test_unplug_and_replug_through_the_stable_link(make_simulator, connect, short_dir):
    modem = make_simulator(directory=str(short_dir))[0]
    link = short_dir / "modem0"
    assert os.readlink(link) == modem.slave_path
    conn = connect(modem)
    modem.unplug()
    assert conn.lost.wait(3)
    with pytest.raises(ModemClosed):
        conn.command("AT")
    assert not link.exists()
    modem.replug()
    assert os.readlink(link) == modem.slave_path
    again = connect(modem)
    assert again.command("AT+CGMI") == ["SIMCOM_Ltd"]


def test_control_socket(make_simulator, connect, short_dir):
    simulator = make_simulator(2, ["sim800", "ec25"], directory=str(short_dir), control=True)
    path = str(short_dir / "control.sock")
    assert request(path, {"cmd": "ping"}) == {"ok": True}
    listing = request(path, {"cmd": "list"})["modems"]
    assert [m["profile"] for m in listing] == ["sim800", "ec25"]
    assert listing[1]["path"] == str(short_dir / "modem1")

    conn = connect(simulator[1])
    conn.command("AT+CMEE=1")
    answer = request(path, {"cmd": "inject_sms", "modem": 1, "sender": "+62811000111",
                            "text": "via control", "timestamp": "2026-01-02T03:04:05+07:00"})
    assert answer == {"ok": True, "indexes": [0]}
    assert conn.urcs.wait_for("+CMTI:").value == '"SM",0'
    deliver = pdu.decode_deliver(conn.command("AT+CMGR=0")[1])
    assert deliver.text == "via control" and deliver.timestamp.hour == 3

    assert request(path, {"cmd": "fault", "modem": 1, "fault": "cms_error_on_send",
                          "count": 1, "code": 42})["ok"]
    part = pdu.encode_submit("+628123456789", "after the fault")[0]
    with pytest.raises(CmsError) as caught:
        conn.session.send_pdu(part.tpdu_length, part.pdu, timeout=2)
    assert caught.value.code == 42
    conn.session.send_pdu(part.tpdu_length, part.pdu, timeout=2)
    sent = request(path, {"cmd": "sent", "modem": 1, "clear": True})["messages"]
    assert [(m["number"], m["text"], m["parts"]) for m in sent] == [
        ("628123456789", "after the fault", 1)]
    assert request(path, {"cmd": "sent"})["messages"] == []

    request(path, {"cmd": "ussd_reply", "modem": 1, "code": "*100#",
                   "reply": {"text": "1 Yes", "options": {"1": "Done"}}})
    conn.command('AT+CUSD=1,"*100#",15')
    assert conn.urcs.wait_for("+CUSD:").value == '1,"1 Yes",15'
    request(path, {"cmd": "urc", "modem": 1, "line": "RING"})
    conn.urcs.wait_for("RING")

    assert request(path, {"cmd": "dance"})["ok"] is False
    assert "IndexError" in request(path, {"cmd": "urc", "modem": 9, "line": "RING"})["error"]
    assert request(path, {"cmd": "fault", "modem": 0, "fault": "fire"})["ok"] is False


def test_standalone_run(short_dir):
    env = {**os.environ, "PYTHONPATH": str(REPO / "components")}
    process = subprocess.Popen(
        [sys.executable, "-m", "otppi.modem.simulator", "--count", "2", "--dir", str(short_dir),
         "--profile", "sim800", "--profile", "ec25"],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env)
    try:
        lines = [process.stdout.readline() for _ in range(2)]
        assert [line.split()[0] for line in lines] == ["modem0", "modem1"], process.stderr.read()
        assert "profile=ec25" in lines[1]
        with serial.Serial(str(short_dir / "modem1"), timeout=2) as port:
            port.write(b"ATE0\r")
            port.read_until(b"OK\r\n")
            port.write(b"AT+CGMI\r")
            assert port.read_until(b"OK\r\n") == b"\r\nQuectel\r\n\r\nOK\r\n"
        assert request(str(short_dir / "control.sock"), {"cmd": "ping"})["ok"]
        process.send_signal(signal.SIGTERM)
        assert process.wait(10) == 0
        assert not (short_dir / "modem0").exists()
        assert not (short_dir / "control.sock").exists()
    finally:
        if process.poll() is None:
            process.kill()
            process.wait()
        process.stdout.close()
        process.stderr.close()


def test_simulator_arguments_are_checked(short_dir):
    with pytest.raises(ValueError):
        Simulator(0)
    with pytest.raises(ValueError):
        Simulator(1, control=True)
    with pytest.raises(ValueError):
        Simulator(1, [])
