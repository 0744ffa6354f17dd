"""The ``otppi`` commands for interactive modem work, end to end: the real CLI as a subprocess, the real
modem component, simulated modems behind real ptys."""

from __future__ import annotations

import json

from otppi.luhn import luhn_digit
from otppi.modem.simulator.base import SimState

from .helpers import stored_secret, wait_until

NOT_RUNNING = "otppi: the modem component is not running"


def run(gw, *args: str, stdin: str | None = None):
    return gw.cli(*args, stdin=stdin, check=False)


def ok(gw, *args: str, stdin: str | None = None) -> str:
    result = run(gw, *args, stdin=stdin)
    assert result.returncode == 0, f"otppi {' '.join(args)}: {result.returncode} {result.stderr}"
    return result.stdout.rstrip("\n")


def fails(gw, *args: str, stdin: str | None = None) -> str:
    """The one error line of a command that must fail with status 1 and print nothing else."""
    result = run(gw, *args, stdin=stdin)
    assert result.returncode == 1, f"otppi {' '.join(args)} should fail: {result.returncode} {result.stdout}"
    assert result.stdout == ""
    line = result.stderr.rstrip("\n")
    assert line.startswith("otppi: ") and "\n" not in line, result.stderr
    return line


def restarted(gw, index: int, name: str, ate0_before: int) -> None:
    """A changed SIM PIN restarts the modem's worker: wait until it has opened the modem again."""
    wait_until(lambda: gw.sim[index].commands_seen.count("ATE0") > ate0_before, what=f"{name} reopened")
    gw.wait_states({name: "ready"})


def outbox(gw) -> list[tuple]:
    return gw.rows("select kind, source, receiver, via, state, modem, body, last_error from sms_outbox order by id")


# ---------------------------------------------------------------- modem info and status


def test_modem_info_and_status(gateway_factory) -> None:
    gw = gateway_factory(count=2, profiles=["ec25", "wavecom"])
    gw.add_modem("m0", 0)
    gw.add_modem("m1", 1)
    gw.add_modem("spare", 1, "--inactive")
    gw.start_modem(wait_for=["m0", "m1"])
    sim0, sim1 = gw.sim[0], gw.sim[1]

    line = ok(gw, "modem", "info", "m0")
    assert line == (f"modem=m0 manufacturer=Quectel model=EC25 revision=EC25EFAR06A06M4G imei={sim0.imei} "
                    f"imsi={sim0.sim.imsi} iccid={sim0.sim.iccid} operator={sim0.sim.operator} "
                    f"msisdn=+{sim0.sim.msisdn} smsc={sim0.sim.smsc} signal=-73dBm registration=home")
    # Values with spaces are quoted so the line still splits into key=value pairs.
    line = ok(gw, "modem", "info", "m1")
    assert 'manufacturer="WAVECOM MODEM" model="MULTIBAND  900E  1800"' in line
    info = json.loads(ok(gw, "modem", "info", "m1", "--json"))
    assert info == {"modem": "m1", "manufacturer": "WAVECOM MODEM", "model": "MULTIBAND  900E  1800",
                    "revision": sim1.profile.revision, "imei": sim1.imei, "imsi": sim1.sim.imsi,
                    "iccid": sim1.sim.iccid, "operator": sim1.sim.operator, "msisdn": f"+{sim1.sim.msisdn}",
                    "sms_center": sim1.sim.smsc, "signal_dbm": -73, "registration": "home"}

    assert ok(gw, "modem", "status").splitlines() == [
        "m0\tready\tconnected\tfailures=0\terror=-",
        "m1\tready\tconnected\tfailures=0\terror=-",
        "spare\tinactive\tnot connected\tfailures=0\terror=-",
    ]
    status = json.loads(ok(gw, "modem", "status", "--json"))
    assert status["live"] is True
    assert [(m["name"], m["state"]) for m in status["modems"]] == [("m0", "ready"), ("m1", "ready"),
                                                                   ("spare", "inactive")]

    assert fails(gw, "modem", "info", "nope") == "otppi: no modem named 'nope'"
    assert fails(gw, "modem", "info", "spare") == "otppi: modem 'spare' is inactive"


# ---------------------------------------------------------------- USSD


def test_ussd_menu_session_answered_then_cancelled(gateway_factory) -> None:
    gw = gateway_factory(count=1)
    gw.add_modem("m0", 0)
    gw.start_modem(wait_for=["m0"])
    hint = ("the network keeps the session open: answer with 'otppi ussd m0 <option>', "
            "or end it with 'otppi ussd m0 --cancel'")

    assert ok(gw, "ussd", "m0", "*123#").splitlines() == ["1 Paket Internet", "2 Info Pulsa", hint]
    assert gw.sim[0].ussd_session is not None
    assert ok(gw, "ussd", "m0", "1").splitlines() == ["1 10GB 30hr Rp50rb", "2 25GB 30hr Rp100rb", hint]
    assert ok(gw, "ussd", "m0", "--cancel") == "USSD session on m0 ended"
    assert gw.sim[0].call(lambda: gw.sim[0].ussd_session) is None, "AT+CUSD=2 must reach the modem"

    # A final answer closes the session: no hint.
    assert ok(gw, "ussd", "m0", "*888#") == "Sisa pulsa Anda Rp 25.000. Aktif s/d 31-12-2026."
    gw.sim[0].set_ussd_reply("*100#", "Kuota 1GB")
    assert json.loads(ok(gw, "ussd", "m0", "*100#", "--json")) == {"modem": "m0", "reply": "Kuota 1GB",
                                                                    "session": False}
    assert fails(gw, "ussd", "m0", "*999#") == "otppi: the operator does not support this USSD code"
    assert fails(gw, "ussd", "m0") == "otppi: give a USSD code (or a menu option) or --cancel, not both"
    assert fails(gw, "ussd", "m0", "*123#", "--cancel").startswith("otppi: give a USSD code")
    assert fails(gw, "ussd", "m0", "*123#", "--timeout", "0") == "otppi: --timeout must be 1 to 300 seconds"


def test_hostile_input_never_reaches_the_modem(gateway_factory) -> None:
    gw = gateway_factory(count=1, profiles=["ec25"])
    gw.add_modem("m0", 0)
    gw.start_modem(wait_for=["m0"])
    imei = gw.sim[0].imei

    for code in ('*123#"\r\nAT+CFUN=0', '*123#\nAT', 'AT"', "*1'23#", "1;2", "*" * 65):
        assert fails(gw, "ussd", "m0", code).startswith("otppi: a USSD code is digits, *, # and +")
    assert fails(gw, "ussd", "m0", " ") == "otppi: enter a USSD code such as *123#"
    assert not [c for c in gw.sim[0].commands_seen if "CUSD" in c or "CFUN" in c]

    assert fails(gw, "modem", "imei", "m0", "35693803564380") == "otppi: an IMEI is 15 digits"
    assert fails(gw, "modem", "imei", "m0", "3569380356438090") == "otppi: an IMEI is 15 digits"
    assert fails(gw, "modem", "imei", "m0", '35693803564380"') == "otppi: an IMEI is 15 digits"
    assert fails(gw, "modem", "imei", "m0", "35693803564380x") == "otppi: an IMEI is 15 digits"
    assert fails(gw, "modem", "imei", "m0", "356938035643808") == (
        "otppi: 356938035643808 fails the Luhn check: with these first 14 digits the last one is 9")
    assert not [c for c in gw.sim[0].commands_seen if "EGMR" in c]
    assert gw.sim[0].imei == imei

    assert fails(gw, "sim", "pin", "m0", "enable") == (
        "otppi: give the PIN on standard input with --pin-stdin (never on the command line)")
    for pin in ("12a4", "123", "123456789", '12"4', "1234\r5"):
        line = fails(gw, "sim", "pin", "m0", "enable", "--pin-stdin", stdin=pin + "\n")
        assert line == "otppi: the current SIM PIN must be 4 to 8 digits"
    line = fails(gw, "sim", "pin", "m0", "change", "--pin-stdin", stdin="1234\n12x4\n")
    assert line == "otppi: the new SIM PIN must be 4 to 8 digits"
    assert fails(gw, "sim", "pin", "m0", "change", "--pin-stdin", stdin="1234\n").endswith("must be 4 to 8 digits")
    assert not [c for c in gw.sim[0].commands_seen if "CLCK" in c or "CPWD" in c]
    assert gw.sim[0].sim.pin_enabled is False and gw.sim[0].sim.pin_attempts == 3

    assert fails(gw, "sms", "send", "0812'; drop table", "hi") == "otppi: the receiver must be a phone number (3 to 20 digits)"
    assert fails(gw, "sms", "send", "0812345678", "a\x1bb") == "otppi: the text must not contain control characters"
    assert outbox(gw) == []


# ---------------------------------------------------------------- manual SMS


def test_manual_sms_reaches_the_modem_it_names(gateway_factory) -> None:
    gw = gateway_factory(count=2)
    gw.add_modem("m0", 0, "--default")
    gw.add_modem("m1", 1)
    gw.start_modem(wait_for=["m0", "m1"])

    assert ok(gw, "sms", "send", "08123456789", "Tes modem\nbaris dua", "--modem", "m1") == "sent via m1"
    assert [(m.number, m.text) for m in gw.sent(1)] == [("628123456789", "Tes modem\nbaris dua")]
    assert gw.sent(0) == []
    assert outbox(gw) == [("manual", "cli", "628123456789", "m1", "sent", "m1", None, "")]

    # Without --modem it is routed like any message (here: the default modem).
    assert ok(gw, "sms", "send", "+62 812-3456-7890", "routed") == "sent via m0"
    assert [(m.number, m.text) for m in gw.sent(0)] == [("6281234567890", "routed")]


def test_manual_sms_through_a_modem_closed_to_api_traffic(gateway_factory) -> None:
    gw = gateway_factory(count=1)
    gw.add_modem("manual-only", 0, "--no-api")
    gw.start_modem(wait_for=["manual-only"])

    assert ok(gw, "sms", "send", "08129999999", "by hand", "--modem", "manual-only") == "sent via manual-only"
    assert ok(gw, "sms", "send", "08129999998", "routed by hand") == "sent via manual-only"
    assert [m.text for m in gw.sent(0)] == ["by hand", "routed by hand"]


def test_manual_sms_reports_the_modem_failure(gateway_factory) -> None:
    gw = gateway_factory(count=2)
    gw.add_modem("m0", 0, "--default")
    gw.add_modem("m1", 1, "--default")
    gw.start_modem(wait_for=["m0", "m1"])
    gw.sim[0].fail_sends(5)

    line = fails(gw, "sms", "send", "08123456789", "will fail", "--modem", "m0")
    assert line.startswith("otppi: not sent to 628123456789 via m0: ")
    assert "+CMS ERROR: 38" in line and "network out of order" in line
    assert gw.sent(0) == [] and gw.sent(1) == [], "a manual SMS for one modem never fails over to another"
    assert outbox(gw)[0][4] == "failed"


def test_manual_sms_outcome_not_known_in_time(gateway_factory) -> None:
    gw = gateway_factory(count=1)
    late = gw.sim_dir / "late"  # the modem's device is not there yet: the message waits in the queue
    gw.cli("modem", "add", "late", "--port", str(late))
    gw.start_modem()
    gw.wait_states({"late": "disconnected"})

    result = run(gw, "sms", "send", "08123456789", "later", "--modem", "late", "--wait", "0.5")
    assert (result.returncode, result.stdout, result.stderr) == (2, "queued (outcome not known after 0.5 s)\n", "")
    assert outbox(gw)[0][4] == "queued"
    late.symlink_to(gw.sim[0].slave_path)  # plugged in
    assert [m.text for m in gw.sim[0].wait_for_sent(1, timeout=40)] == ["later"], "it is still sent"


def test_manual_sms_refusals_queue_nothing(gateway_factory) -> None:
    gw = gateway_factory(count=1)
    gw.add_modem("m0", 0)
    gw.add_modem("off", 0, "--inactive")
    gw.start_modem(wait_for=["m0"])
    ok(gw, "block", "add", "08120000000")

    assert fails(gw, "sms", "send", "hello", "text") == "otppi: the receiver must be a phone number (3 to 20 digits)"
    assert fails(gw, "sms", "send", "08123456789", "") == "otppi: the text must not be empty"
    assert fails(gw, "sms", "send", "08123456789", "x" * 1601) == (
        "otppi: the text is longer than 1600 characters")
    assert fails(gw, "sms", "send", "08120000000", "hi") == "otppi: 628120000000 is on the block list"
    assert fails(gw, "sms", "send", "08123456789", "hi", "--modem", "nope") == "otppi: no modem named 'nope'"
    assert fails(gw, "sms", "send", "08123456789", "hi", "--modem", "off") == "otppi: modem 'off' is inactive"
    assert fails(gw, "sms", "send", "08123456789", "hi", "--wait", "-1") == (
        "otppi: --wait must be 0 to 3600 seconds")
    assert outbox(gw) == []
    assert gw.sent(0) == []


# ---------------------------------------------------------------- inbox


def inbox_count(gw) -> int:
    return gw.rows("select count(*) from inbox_message")[0][0]


def test_inbox_list_delete_and_refresh(gateway_factory) -> None:
    gw = gateway_factory(count=2)
    gw.add_modem("m0", 0)
    gw.add_modem("m1", 1)
    gw.start_modem(wait_for=["m0", "m1"])
    assert ok(gw, "inbox", "list") == "the inbox is empty"

    gw.sim[0].receive_sms("+628111222333", "Halo\nbaris dua\tdan tab", timestamp="2026-01-02T03:04:05+07:00")
    wait_until(lambda: inbox_count(gw) == 1, what="the SMS in the inbox")
    (row_id,) = gw.rows("select id from inbox_message")[0]
    assert ok(gw, "inbox", "list") == f"{row_id}\t2026-01-02T03:04:05+07:00\tm0\t628111222333\tHalo⏎baris dua dan tab"
    (message,) = json.loads(ok(gw, "inbox", "list", "--json"))
    assert (message["id"], message["modem"], message["sender"], message["body"]) == (
        row_id, "m0", "628111222333", "Halo\nbaris dua\tdan tab")
    assert ok(gw, "inbox", "list", "--modem", "m1") == "the inbox is empty"
    assert fails(gw, "inbox", "list", "--modem", "nope") == "otppi: no modem named 'nope'"

    # A message the modem stored without announcing it (+CNMI mode 0) waits on the SIM for a refresh.
    gw.sim[1].call(setattr, gw.sim[1].settings, "cnmi", (0, 0, 0, 0, 0))
    gw.sim[1].receive_sms("+628444", "\x1b[2Jquiet")
    assert ok(gw, "inbox", "refresh", "m1") == "1 message(s) moved from the SIM of m1 to the inbox"
    assert gw.sim[1].call(lambda: dict(gw.sim[1].storage.messages)) == {}
    lines = ok(gw, "inbox", "list", "--modem", "m1").splitlines()
    assert len(lines) == 1 and lines[0].endswith("\tm1\t628444\t\\x1b[2Jquiet"), "escape codes are shown, not run"
    assert ok(gw, "inbox", "refresh", "m1") == "0 message(s) moved from the SIM of m1 to the inbox"

    assert ok(gw, "inbox", "delete", str(row_id)) == f"inbox message {row_id} deleted"
    assert fails(gw, "inbox", "delete", str(row_id)) == f"otppi: no inbox message {row_id}"
    assert [r[0] for r in gw.rows("select modem from inbox_message")] == ["m1"]
    assert fails(gw, "inbox", "refresh", "nope") == "otppi: no modem named 'nope'"


# ---------------------------------------------------------------- IMEI tool


def test_imei_change_where_the_modem_can_and_refusal_where_it_cannot(gateway_factory) -> None:
    gw = gateway_factory(count=2, profiles=["ec25", "wavecom"])
    gw.add_modem("quectel", 0)
    gw.add_modem("wavecom", 1)
    gw.start_modem(wait_for=["quectel", "wavecom"])
    new = "35693803564380" + luhn_digit("35693803564380")
    assert new == "356938035643809"

    assert ok(gw, "modem", "imei", "quectel", new) == (
        f"IMEI of quectel is now {new} (restart the modem for the network to see it)")
    assert gw.sim[0].imei == new
    assert json.loads(ok(gw, "modem", "info", "quectel", "--json"))["imei"] == new

    before = gw.sim[1].imei
    assert fails(gw, "modem", "imei", "wavecom", new) == (
        "otppi: this modem cannot change its IMEI: wavecom refused AT+EGMR")
    assert gw.sim[1].imei == before
    assert fails(gw, "modem", "imei", "nope", new) == "otppi: no modem named 'nope'"


def test_luhn_digit_matches_known_imeis() -> None:
    assert luhn_digit("49015420323751") == "8"  # 490154203237518, the usual worked example
    assert luhn_digit("35209900176148") == "1"


# ---------------------------------------------------------------- SIM tool


def test_sim_pin_enable_change_disable(gateway_factory) -> None:
    gw = gateway_factory(count=1)
    gw.add_modem("m0", 0)
    gw.start_modem(wait_for=["m0"])
    modem = gw.sim[0]

    ate0 = modem.commands_seen.count("ATE0")
    assert ok(gw, "sim", "pin", "m0", "enable", "--pin-stdin", stdin="1234\n") == (
        "SIM PIN lock enabled on m0; the PIN is saved in its modem settings")
    assert modem.sim.pin_enabled is True
    assert stored_secret(gw.root, "modem", "sim_pin", "name = ?", "m0") == "1234"
    restarted(gw, 0, "m0", ate0)

    # The SIM is really locked: after a power cycle it asks for the PIN ...
    modem.power_cycle()
    assert modem.call(lambda: modem.sim_state) is SimState.PIN
    # ... and the modem component enters the saved one when it opens the modem again.
    ok(gw, "modem", "set", "m0", "baud_rate", "57600")
    wait_until(lambda: 'AT+CPIN="1234"' in modem.commands_seen, what="the saved PIN entered")
    gw.wait_states({"m0": "ready"})
    assert modem.call(lambda: modem.sim_state) is SimState.READY

    ate0 = modem.commands_seen.count("ATE0")
    assert ok(gw, "sim", "pin", "m0", "change", "--pin-stdin", stdin="1234\n4321\n") == (
        "SIM PIN changed on m0; the PIN is saved in its modem settings")
    assert modem.sim.pin == "4321"
    assert stored_secret(gw.root, "modem", "sim_pin", "name = ?", "m0") == "4321"
    restarted(gw, 0, "m0", ate0)

    result = run(gw, "sim", "pin", "m0", "disable", "--pin-stdin", stdin="1111\n")
    assert (result.returncode, result.stderr) == (1, "otppi: m0: the SIM refused the PIN (wrong PIN)\n")
    assert modem.sim.pin_enabled is True

    ate0 = modem.commands_seen.count("ATE0")
    assert ok(gw, "sim", "pin", "m0", "disable", "--pin-stdin", stdin="4321\n") == (
        "SIM PIN lock disabled on m0; the PIN is removed from its modem settings")
    assert modem.sim.pin_enabled is False
    assert stored_secret(gw.root, "modem", "sim_pin", "name = ?", "m0") == ""
    restarted(gw, 0, "m0", ate0)

    # Changing a PIN needs the lock on (+CME ERROR: 3 otherwise).
    line = fails(gw, "sim", "pin", "m0", "change", "--pin-stdin", stdin="4321\n5555\n")
    assert line.startswith("otppi: m0: the SIM does not allow this now")
    assert fails(gw, "sim", "pin", "nope", "enable", "--pin-stdin", stdin="1234\n") == "otppi: no modem named 'nope'"


# ---------------------------------------------------------------- mobile internet


def test_internet_state_and_refusal(gateway_factory) -> None:
    gw = gateway_factory(count=1)
    gw.add_modem("m0", 0)
    gw.start_modem(wait_for=["m0"])

    assert ok(gw, "internet", "m0", "state") == "m0: internet down"
    assert fails(gw, "internet", "m0", "up") == (
        "otppi: Internet Access is off for modem m0: turn it on in its modem settings")
    assert ok(gw, "internet", "m0", "down") == "m0: internet down"
    assert fails(gw, "internet", "nope", "state") == "otppi: no modem named 'nope'"
    assert run(gw, "internet", "m0", "sideways").returncode == 2  # argparse: not a choice


# ---------------------------------------------------------------- the component is down


def test_every_command_says_when_the_modem_component_is_not_running(gateway_factory) -> None:
    gw = gateway_factory(count=1)
    gw.add_modem("m0", 0)
    gw.start_modem(wait_for=["m0"])
    assert gw.stop_modem() == 0

    for args, stdin in [
        (("modem", "info", "m0"), None),
        (("ussd", "m0", "*888#"), None),
        (("ussd", "m0", "--cancel"), None),
        (("inbox", "refresh", "m0"), None),
        (("modem", "imei", "m0", "356938035643809"), None),
        (("sim", "pin", "m0", "enable", "--pin-stdin"), "1234\n"),
        (("internet", "m0", "state"), None),
    ]:
        assert fails(gw, *args, stdin=stdin) == NOT_RUNNING, args

    assert fails(gw, "sms", "send", "08123456789", "hi") == NOT_RUNNING + ": nothing queued"
    assert outbox(gw) == []

    result = run(gw, "modem", "status")
    assert result.returncode == 0
    assert result.stderr == NOT_RUNNING + "; showing the last recorded status\n"
    (line,) = result.stdout.splitlines()
    assert line.startswith("m0\tready\tconnected\tfailures=0\terror=-\tas of ")
    assert json.loads(run(gw, "modem", "status", "--json").stdout)["live"] is False
    assert ok(gw, "inbox", "list") == "the inbox is empty", "the inbox is read from the store"
    # An unknown modem is named as such before the component is asked.
    assert fails(gw, "modem", "info", "ghost") == "otppi: no modem named 'ghost'"
    assert fails(gw, "sim", "pin", "ghost", "disable", "--pin-stdin", stdin="1234\n") == "otppi: no modem named 'ghost'"
