"""The modem component end to end: REST → routing → simulated modems through real pyserial."""

from __future__ import annotations

import time

from otppi import codes

from ..gateway import API_USER
from ..helpers import wait_until


def numbers_seen(gw, index: int) -> list[str]:
    return [m.number for m in gw.sent(index)]


def test_the_seed_routing_example_with_two_sims_of_one_operator(gateway_factory) -> None:
    gw = gateway_factory(count=5)
    gw.add_modem("modem1a", 0, "--prefix", "62871", "--prefix", "62872")
    gw.add_modem("modem1b", 1, "--prefix", "62871", "--prefix", "62872")
    gw.add_modem("modem2", 2, "--prefix", "62835", "--prefix", "62856", "--prefix", "62837")
    gw.add_modem("modem3", 3, "--prefix", "62845")
    gw.add_modem("modem4", 4, "--prefix", "62848", "--prefix", "62849", "--default")
    gw.start_modem(wait_for=["modem1a", "modem1b", "modem2", "modem3", "modem4"])
    gw.start_api()
    cases = [("08711111111", 0), ("08722222222", 1), ("08713333333", 0), ("08724444444", 1),
             ("0835", 2), ("0856", 2), ("0837", 2), ("0845", 3), ("0848", 4), ("0812", 4), ("+44 20 7946 0000", 4)]
    for i, (number, _) in enumerate(cases):
        receiver = number if len(number) > 5 else number + "1234567"
        answer = gw.rest("send-sms", id=f"route-{i}", receiver=receiver, message=f"m{i}")
        assert answer["response_code"] == codes.SUCCESS, answer
    got = {index: [m.text for m in gw.sent(index)] for index in range(5)}
    assert got == {0: ["m0", "m2"], 1: ["m1", "m3"], 2: ["m4", "m5", "m6"], 3: ["m7"], 4: ["m8", "m9", "m10"]}
    assert numbers_seen(gw, 4)[-1] == "442079460000"
    rows = gw.rows("select modem, state, body from sms_outbox order by id")
    assert [r[0] for r in rows] == ["modem1a", "modem1b", "modem1a", "modem1b", "modem2", "modem2", "modem2",
                                    "modem3", "modem4", "modem4", "modem4"]
    assert all(state == "sent" and body is None for _, state, body in rows), "bodies are erased once sent"


def test_otp_by_sms_validates(gateway_factory) -> None:
    gw = gateway_factory(count=1)
    gw.add_modem("m", 0, "--default")
    gw.start_modem(wait_for=["m"])
    api = gw.start_api()
    answer = gw.rest("create-otp", receiver="08126666666", reference="trx-1", message="Kode OTP Anda %s",
                     param1="100000")
    assert answer["response_code"] == codes.SUCCESS
    text = gw.sent(0)[0].text
    code = text.rsplit(" ", 1)[1]
    check = {"receiver": "+628126666666", "reference": "trx-1", "otp": code, "param1": "100000"}
    assert api.post("/api/otp", {"command": "validate-otp", "data": check}).json()["response_code"] == "000"


def test_unicode_and_multipart(gateway_factory) -> None:
    gw = gateway_factory(count=1)
    gw.add_modem("m", 0, "--default")
    gw.start_modem(wait_for=["m"])
    gw.start_api()
    long_text = "Pesan panjang {ext} € " * 30
    emoji = "Kode: 123456 🔐 — jangan dibagikan ke siapa pun " * 4
    for i, text in enumerate([long_text, emoji]):
        assert gw.rest("send-sms", id=f"u{i}", receiver="0812", message=text)["response_code"] == "000"
    sent = gw.sent(0)
    assert [m.text for m in sent] == [long_text, emoji]
    assert [m.parts for m in sent] == [5, 3]
    assert [m.encoding for m in sent] == ["gsm7", "ucs2"]
    assert gw.rows("select parts from sms_outbox order by id") == [(5,), (3,)]


def test_failover_to_the_next_modem_and_quarantine(gateway_factory) -> None:
    gw = gateway_factory(count=2)
    gw.cli("settings", "set", "sms.failures_to_quarantine", "2")
    gw.cli("settings", "set", "sms.quarantine_seconds", "3600")
    gw.add_modem("a", 0, "--prefix", "62812")
    gw.add_modem("b", 1, "--default")
    gw.start_modem(wait_for=["a", "b"])
    gw.start_api()
    gw.sim[0].fail_sends(10, code=38)
    for i in range(3):
        assert gw.rest("send-sms", id=f"f{i}", receiver="0812555", message=f"f{i}")["response_code"] == "000"
    assert [m.text for m in gw.sent(1)] == ["f0", "f1", "f2"], "each failed on a, then went out through b"
    assert gw.sent(0) == []
    gw.wait_states({"a": "quarantined"})
    assert gw.rows("select count(*) from event where result = 'retry' and modem = 'a'") == [(2,)]
    assert gw.rows("select tried from sms_outbox where message_key = 'send-sms:f0'") == [("a",)]


def test_every_modem_failing_answers_1101(gateway_factory) -> None:
    gw = gateway_factory(count=2)
    gw.add_modem("a", 0)
    gw.add_modem("b", 1)
    gw.start_modem(wait_for=["a", "b"])
    gw.start_api()
    gw.sim[0].fail_sends(1, code=38)
    gw.sim[1].fail_sends(1, code=500)
    answer = gw.rest("send-sms", id="x", receiver="0812", message="m")
    assert answer["response_code"] == codes.NO_MODEM
    assert "500" in answer["message"]
    assert gw.rows("select state, body from sms_outbox") == [("failed", None)]


def test_no_usable_modem_fails_at_once(gateway_factory) -> None:
    gw = gateway_factory(count=1)
    gw.add_modem("manual", 0, "--no-api")
    gw.start_modem(wait_for=["manual"])
    gw.start_api()
    answer = gw.rest("send-sms", receiver="0812", message="m")
    assert answer["response_code"] == codes.NO_MODEM
    assert "no active modem" in answer["message"]
    assert gw.sent(0) == [], "a modem with Send SMS from API off never takes API traffic"


def test_inbox_multipart_survives_a_restart_between_parts(gateway_factory) -> None:
    gw = gateway_factory(count=1)
    gw.add_modem("m", 0, "--default")
    gw.start_modem(wait_for=["m"])
    gw.sim[0].receive_sms("+628123456789", "short one")
    wait_until(lambda: gw.rows("select sender, body from inbox_message") == [("628123456789", "short one")],
               what="inbox row")
    wait_until(lambda: gw.sim[0].storage.listing(4) == [], what="SIM emptied after the commit")
    assert gw.stop_modem() == 0
    gw.sim[0].receive_sms("+628123456789", "Lorem ipsum dolor sit amet " * 12)  # stored while down
    gw.start_modem(wait_for=["m"])
    wait_until(lambda: len(gw.rows("select id from inbox_message")) == 2, what="multipart message")
    body, parts = gw.rows("select body, parts from inbox_message order by id desc limit 1")[0]
    assert body == "Lorem ipsum dolor sit amet " * 12 and parts == 3
    assert gw.rows("select count(*) from inbox_part") == [(0,)]


def test_status_reports_mark_delivery(gateway_factory) -> None:
    gw = gateway_factory(count=1)
    gw.add_modem("m", 0, "--default")
    gw.start_modem(wait_for=["m"])
    gw.start_api()
    assert gw.rest("send-sms", id="dr", receiver="0812", message="report me")["response_code"] == "000"
    ref = gw.sent(0)[0].message_references[0]
    assert gw.rows("select delivery_state from sms_outbox") == [("pending",)]
    gw.sim[0].send_status_report(ref, status=0)
    wait_until(lambda: gw.rows("select delivery_state from sms_outbox") == [("delivered",)], what="delivered")


def test_ussd_through_rest(gateway_factory) -> None:
    gw = gateway_factory(count=2, profiles=["sim800", "huawei-e173"])
    gw.add_modem("simcom", 0)
    gw.add_modem("huawei", 1)
    gw.start_modem(wait_for=["simcom", "huawei"])
    gw.start_api()
    gw.cli("api-user", "set", API_USER, "--allow-ussd")
    for name in ("simcom", "huawei"):
        answer = gw.rest("request-ussd", modem=name, code="*888#")
        assert answer["response_code"] == "000", answer
        assert answer["data"]["reply"].startswith("Sisa pulsa")
    assert gw.rest("request-ussd", modem="nosuch", code="*888#")["response_code"] == codes.MALFORMED
    bad = gw.rest("request-ussd", modem="simcom", code="*999#")
    assert bad["response_code"] == codes.FAILED


def test_unplug_reroutes_and_replug_reattaches(gateway_factory) -> None:
    gw = gateway_factory(count=2)
    gw.add_modem("a", 0, "--default")
    gw.add_modem("b", 1)
    gw.start_modem(wait_for=["a", "b"])
    gw.start_api()
    gw.sim[0].unplug()
    gw.wait_states({"a": "disconnected"})
    assert gw.rest("send-sms", id="u1", receiver="0812", message="while a is out")["response_code"] == "000"
    assert [m.text for m in gw.sent(1)] == ["while a is out"]
    gw.sim[0].replug()
    gw.wait_states({"a": "ready"}, timeout=40)
    assert gw.rest("send-sms", id="u2", receiver="0812", message="a is back")["response_code"] == "000"
    assert [m.text for m in gw.sent(0)] == ["a is back"]


def test_a_silent_modem_is_reopened_and_its_message_goes_elsewhere(gateway_factory) -> None:
    gw = gateway_factory(count=2)
    gw.cli("settings", "set", "sms.send_timeout", "2")
    gw.add_modem("a", 0, "--default")
    gw.add_modem("b", 1)
    gw.start_modem(wait_for=["a", "b"])
    gw.start_api()
    gw.sim[0].go_silent()
    assert gw.rest("send-sms", id="s1", receiver="0812", message="hush")["response_code"] == "000"
    assert [m.text for m in gw.sent(1)] == ["hush"]
    gw.sim[0].answer_again()
    gw.wait_states({"a": "ready"}, timeout=40)


def test_modems_are_picked_up_live(gateway_factory) -> None:
    gw = gateway_factory(count=2)
    gw.add_modem("a", 0, "--default")
    gw.start_modem(wait_for=["a"])
    gw.add_modem("b", 1, "--prefix", "62813")
    gw.wait_states({"a": "ready", "b": "ready"})
    gw.cli("modem", "remove", "a")
    wait_until(lambda: "a" not in gw.states(), what="a's worker gone")
    wait_until(lambda: gw.rows("select name from modem_status") == [("b",)], what="a's status row gone")


def test_kill_9_loses_nothing_and_sends_nothing_twice(gateway_factory) -> None:
    gw = gateway_factory(count=2, network_delay=0.3)
    gw.add_modem("a", 0)
    gw.add_modem("b", 1)
    gw.cli("settings", "set", "api.wait_timeout", "0")
    gw.start_modem(wait_for=["a", "b"])
    gw.start_api()
    for i in range(30):
        assert gw.rest("send-sms", id=f"k{i}", receiver="0812", message=f"k{i}")["response_code"] == codes.QUEUED
    wait_until(lambda: len(gw.sim.sent_messages()) >= 4, what="some sent")
    gw.kill_modem()
    gw.start_modem()
    wait_until(lambda: gw.rows("select count(*) from sms_outbox where state = 'sent'") == [(30,)], timeout=60,
               what="all 30 sent")
    texts = [m.text for m in gw.sim.sent_messages()]
    assert set(texts) == {f"k{i}" for i in range(30)}, "none lost"
    assert len(texts) - 30 <= 2, "at most the one in flight per modem is sent again"


def test_expired_messages_are_dropped_not_sent(gateway_factory) -> None:
    gw = gateway_factory(count=1)
    gw.add_modem("m", 0, "--default")
    gw.cli("settings", "set", "api.wait_timeout", "0")
    gw.start_api()
    answer = gw.rest("send-sms", id="e", receiver="0812", message="late", expiration=time.time() + 1)
    assert answer["response_code"] == codes.QUEUED
    wait_until(lambda: time.time() > answer["data"]["date_time"] + 2, what="expiry passed")
    gw.start_modem(wait_for=["m"])
    wait_until(lambda: gw.rows("select state from sms_outbox") == [("expired",)], what="dropped as expired")
    assert gw.sent(0) == []


def test_sim_pin_from_modem_settings_and_sim_busy_after_power_up(gateway_factory) -> None:
    gw = gateway_factory(count=2, pin="4321", sim_busy_seconds=1.5)
    gw.add_modem("with-pin", 0)
    gw.add_modem("without", 1)
    gw.cli("modem", "set", "with-pin", "sim_pin", "4321")
    gw.start_modem(wait_for=["with-pin"])
    gw.wait_states({"without": "disconnected"})
    error = gw.rows("select last_error from modem_status where name = 'without'")[0][0]
    assert "asks for a PIN" in error
    gw.cli("modem", "set", "without", "sim_pin", "4321")
    gw.wait_states({"without": "ready"}, timeout=40)


def test_serial_settings_are_applied_to_the_port(gateway_factory) -> None:
    import termios

    gw = gateway_factory(count=1)
    gw.add_modem("m", 0, "--baud", "9600")
    gw.cli("modem", "set", "m", "parity", "E")
    gw.cli("modem", "set", "m", "stop_bits", "2")
    gw.start_modem(wait_for=["m"])
    iflag, oflag, cflag, lflag, ispeed, ospeed, cc = termios.tcgetattr(gw.sim[0]._link._slave)
    assert ispeed == ospeed == termios.B9600
    assert cflag & termios.CSTOPB, "two stop bits"
    # Parity cannot be seen here: Linux's pty driver clears PARENB on every tcsetattr. The mapping of
    # E/O/M/S to pyserial is covered in test_framing's port settings tests.


def test_pacing_keeps_a_minimum_interval_per_modem(gateway_factory) -> None:
    gw = gateway_factory(count=1)
    gw.cli("settings", "set", "sms.min_interval_ms", "400")
    gw.cli("settings", "set", "api.wait_timeout", "0")
    gw.add_modem("m", 0, "--default")
    gw.start_modem(wait_for=["m"])
    gw.start_api()
    for i in range(3):
        gw.rest("send-sms", id=f"p{i}", receiver="0812", message=f"p{i}")
    gw.sim[0].wait_for_sent(3, timeout=20)
    times = [p.time for p in gw.sim[0].sent.parts()]
    gaps = [(b - a).total_seconds() for a, b in zip(times, times[1:])]
    assert min(gaps) >= 0.35, gaps  # the modem is never asked again sooner than the interval


def test_daily_cap_moves_traffic_to_the_next_modem(gateway_factory) -> None:
    gw = gateway_factory(count=2)
    gw.cli("settings", "set", "sms.daily_cap", "2")
    gw.add_modem("cheap", 0, "--prefix", "62812")
    gw.add_modem("fallback", 1, "--default")
    gw.start_modem(wait_for=["cheap", "fallback"])
    gw.start_api()
    for i in range(3):
        assert gw.rest("send-sms", id=f"c{i}", receiver="0812", message=f"c{i}")["response_code"] == "000"
    assert [m.text for m in gw.sent(0)] == ["c0", "c1"]
    assert [m.text for m in gw.sent(1)] == ["c2"]
    assert gw.rows("select sent_today from modem_status where name = 'cheap'") == [(2,)]


def test_monitor_sms_traffic_off_records_failures_only(gateway_factory) -> None:
    gw = gateway_factory(count=1)
    gw.cli("settings", "set", "sms.monitor_traffic", "false")
    gw.add_modem("m", 0, "--default")
    gw.start_modem(wait_for=["m"])
    gw.start_api()
    assert gw.rest("send-sms", id="quiet", receiver="0812", message="m")["response_code"] == "000"
    gw.sim[0].fail_sends(1, code=38)
    assert gw.rest("send-sms", id="loud", receiver="0812", message="m")["response_code"] == codes.NO_MODEM
    assert gw.rows("select result from event where kind = 'sms' order by id") == [("retry",), ("failed",)]
