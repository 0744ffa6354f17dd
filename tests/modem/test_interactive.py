"""Interactive calls (USSD, tools) against the real modem component and simulated modems: they never hold
the modem from OTPs, never pile up, never run for a caller who has gone, and their errors travel as data."""

from __future__ import annotations

import threading
from typing import Any

from otppi import codes

from ..gateway import API_USER
from ..helpers import wait_until


def ussd_codes(commands: list[str]) -> list[str]:
    return [c for c in commands if c.startswith("AT+CUSD=1,")]


class Calls:
    """Control requests made from threads, as several admins, scripts or REST clients would at once."""

    def __init__(self, gw) -> None:
        self.gw = gw
        self.answers: list[dict[str, Any]] = []
        self.threads: list[threading.Thread] = []

    def start(self, request: dict[str, Any]) -> None:
        def ask() -> None:
            self.answers.append(self.gw.control(request, timeout=request.get("timeout", 30) + 10))
        thread = threading.Thread(target=ask)
        thread.start()
        self.threads.append(thread)

    def join(self) -> list[dict[str, Any]]:
        for thread in self.threads:
            thread.join(60)
        return self.answers


def modem_status(gw, name: str) -> dict[str, Any]:
    answer = gw.control({"op": "status"}, timeout=5)
    return next(m for m in answer["modems"] if m["name"] == name)


def test_an_otp_waits_behind_one_interactive_call_at_most(gateway_factory) -> None:
    gw = gateway_factory(count=1)
    gw.add_modem("m", 0, "--default")
    gw.start_modem(wait_for=["m"])
    gw.start_api()
    modem = gw.sim[0]
    modem.set_ussd_delay(3.0)  # a slow USSD service; SMS goes through as fast as ever

    calls = Calls(gw)
    calls.start({"op": "ussd", "modem": "m", "code": "*888#", "timeout": 30})
    wait_until(lambda: ussd_codes(modem.commands_seen), what="the first USSD code at the modem")
    for _ in range(4):
        calls.start({"op": "ussd", "modem": "m", "code": "*123#", "timeout": 30})
    wait_until(lambda: len(calls.answers) == 3, what="three calls refused at once")
    assert [a.get("kind") for a in calls.answers] == ["busy"] * 3, calls.answers
    assert modem_status(gw, "m")["calls_waiting"] == 1

    before = len(modem.commands_seen)
    answer = gw.rest("create-otp", receiver="08126666666", reference="behind-ussd")
    assert answer["response_code"] == codes.SUCCESS, answer
    commands = modem.commands_seen[before:]
    sent_at = next(i for i, c in enumerate(commands) if c.startswith("AT+CMGS="))
    assert ussd_codes(commands[:sent_at]) == [], "no interactive call started between the OTP's arrival and its send"

    answers = calls.join()
    assert sorted(a.get("kind", "ok") for a in answers) == ["busy", "busy", "busy", "ok", "ok"], answers
    assert len(ussd_codes(modem.commands_seen)) == 2, "the refused calls never reached the modem"


def test_a_call_whose_caller_has_gone_is_skipped(gateway_factory) -> None:
    gw = gateway_factory(count=1)
    gw.add_modem("m", 0)
    gw.start_modem(wait_for=["m"])
    modem = gw.sim[0]
    modem.set_ussd_delay(4.0)

    calls = Calls(gw)
    calls.start({"op": "ussd", "modem": "m", "code": "*888#", "timeout": 30})
    wait_until(lambda: ussd_codes(modem.commands_seen), what="the first USSD code at the modem")
    impatient = gw.control({"op": "ussd", "modem": "m", "code": "*100#", "timeout": 1})
    assert (impatient["ok"], impatient["kind"]) == (False, "timeout"), impatient
    calls.start({"op": "ussd", "modem": "m", "code": "*123#", "timeout": 30})  # the place it left is free

    first, second = calls.join()
    assert first["ok"] and first["reply"].startswith("Sisa pulsa"), first
    assert second["ok"] and second["session"], second
    modem.set_ussd_delay(0.0)
    assert gw.control({"op": "ussd", "modem": "m", "code": "*888#", "timeout": 10})["ok"]
    assert [c for c in modem.commands_seen if "*100#" in c] == [], "the call whose caller gave up never ran"


def test_request_ussd_over_rest_stops_at_the_callers_deadline(gateway_factory) -> None:
    gw = gateway_factory(count=1)
    gw.cli("settings", "set", "api.wait_timeout", "5")
    gw.add_modem("m", 0)
    gw.start_modem(wait_for=["m"])
    gw.start_api()
    gw.cli("api-user", "set", API_USER, "--allow-ussd")
    modem = gw.sim[0]
    modem.set_ussd_delay(60.0)  # a network that answers long after the REST client has gone

    answer = gw.rest("request-ussd", modem="m", code="*888#")
    assert answer["response_code"] == codes.FAILED, answer
    assert "no USSD answer in" in answer["message"] or "did not finish" in answer["message"], answer
    # The modem stopped waiting at the REST caller's deadline and ended the request, not a minute later.
    wait_until(lambda: "AT+CUSD=2" in modem.commands_seen, timeout=20, what="the USSD request ended")
    assert modem_status(gw, "m")["in_call"] is False


def test_request_ussd_needs_the_permission_of_the_api_user(gateway_factory) -> None:
    gw = gateway_factory(count=1)
    gw.add_modem("m", 0)
    gw.start_modem(wait_for=["m"])
    gw.start_api()
    answer = gw.rest("request-ussd", modem="m", code="*888#")
    assert answer["response_code"] == codes.UNAUTHORIZED
    assert answer["message"] == (
        f"API user {API_USER!r} may not use request-ussd (USSD codes can move credit): an administrator allows it "
        f"on the API users page or with 'otppi api-user set {API_USER} --allow-ussd'")
    assert ussd_codes(gw.sim[0].commands_seen) == []
    gw.cli("api-user", "set", API_USER, "--allow-ussd")
    assert gw.rest("request-ussd", modem="m", code="*888#")["response_code"] == codes.SUCCESS
    gw.cli("api-user", "set", API_USER, "--no-allow-ussd")
    assert gw.rest("request-ussd", modem="m", code="*888#")["response_code"] == codes.UNAUTHORIZED


def test_control_errors_are_data(gateway_factory) -> None:
    gw = gateway_factory(count=1, profiles=["wavecom"])
    gw.add_modem("m", 0)
    gw.start_modem(wait_for=["m"])

    def error(request: dict[str, Any]) -> tuple:
        answer = gw.control({"timeout": 10, **request})
        assert answer["ok"] is False and answer["error"], answer
        return answer["kind"], answer["cme"]

    assert error({"op": "sideways"}) == ("bad_request", None)
    assert error({"op": "info", "modem": "nope"}) == ("no_modem", None)
    assert error({"op": "sim_pin", "modem": "m", "action": "disable", "pin": "0000"}) == ("cme", 16)
    assert error({"op": "ussd", "modem": "m", "code": "*999#"}) == ("ussd", None)
    assert error({"op": "imei", "modem": "m", "imei": "356938035643809"}) == ("unsupported", None)
    assert gw.stop_modem() == 0
    assert error({"op": "status"}) == ("not_running", None)
