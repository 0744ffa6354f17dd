"""The modem tools, the SMS inbox and the device pages through the Flask test client, without a modem
component: the login gate and CSRF on every route, validation beside each field, the inbox, the device
clock, restart and reboot through an injected runner, and a clear message (never a 500) while the modem
component is not running. The same pages against the real modem component: test_tools_gateway.py.
"""

from __future__ import annotations

import html as htmllib
import re
from urllib.parse import urlsplit

import pytest

from otppi.admin import system
from otppi.store.db import db
from otppi.store.models import BlockedNumber, InboxMessage, Modem, SmsOutbox

from .conftest import create_admin, csrf, logout, post_form, routes

NOT_RUNNING = "the modem component is not running"
PHONE = "the receiver must be a phone number (3 to 20 digits)"
MINE = ("monitor.", "inbox.", "tools.", "system.")


def my_routes(method: str):
    return [r for r in routes() if r.method == method and r.endpoint.startswith(MINE)]


def field_error(page: str, name: str) -> str:
    found = re.search(rf'<p class="error" id="e-{name}">(.*?)</p>', page, re.S)
    return htmllib.unescape(found.group(1)) if found else ""


def page_error(page: str) -> str:
    found = re.search(r'<p class="flash bad" role="alert"[^>]*>(.*?)</p>', page, re.S)
    return htmllib.unescape(found.group(1)).strip() if found else ""


def flashes(page: str) -> list[str]:
    """Flashed messages, plain or (with flash categories shown) errors."""
    found = re.findall(r'<p class="flash(?: bad)?" role="(?:status|alert)">(.*?)</p>', page, re.S)
    return [htmllib.unescape(m) for m in found]


class Recorder:
    """A runner for restart and reboot that records each command and answers as told."""

    def __init__(self, answer=(0, "")):
        self.calls: list[list[str]] = []
        self.answer = answer

    def __call__(self, argv: list[str]) -> tuple[int, str]:
        self.calls.append(list(argv))
        if isinstance(self.answer, Exception):
            raise self.answer
        return self.answer


@pytest.fixture
def runner(admin_app) -> Recorder:
    recorder = Recorder()
    admin_app.config["OTPPI_RUN"] = recorder
    return recorder


@pytest.fixture
def modems():
    with db.atomic():
        Modem.create(name="m0", port="/dev/ttyUSB0")
        Modem.create(name="m1", port="/dev/ttyUSB1", internet_access=True, apn="internet")
        Modem.create(name="off", port="/dev/ttyUSB2", active=False)


def add_inbox(count: int, modem: str = "m0") -> list[int]:
    with db.atomic():
        return [InboxMessage.create(modem=modem, sender=f"6281100000{n:02d}", body=f"message {n}",
                                    received_at=1_700_000_000 + n).id for n in range(count)]


def state() -> tuple:
    """Everything a tool page could change, to check that a refused request changed nothing."""
    return (SmsOutbox.select().count(), [(m.id, m.is_read) for m in InboxMessage.select().order_by(InboxMessage.id)],
            [(m.name, m.sim_pin, m.imei) for m in Modem.select().order_by(Modem.name)])


# ---------------------------------------------------------------- the gate and CSRF


def test_the_pages_are_registered():
    paths = {r.path for r in my_routes("GET")} | {r.path for r in my_routes("POST")}
    assert {"/monitor", "/monitor/events", "/inbox", "/inbox/1", "/tools/sms", "/tools/ussd", "/tools/imei",
            "/tools/sim", "/tools/internet", "/system/time", "/system/x"} <= paths
    assert {"/inbox/1/delete", "/inbox/1/reply", "/inbox/refresh"} <= {r.path for r in my_routes("POST")}


@pytest.mark.parametrize("route", my_routes("GET") + my_routes("POST"), ids=str)
def test_anonymous_users_are_refused(client, route, runner):
    create_admin(client)
    logout(client)
    add_inbox(1)
    before = state()
    if route.method == "GET":
        response = client.get(route.path, buffered=False)
    else:
        assert client.post(route.path, data={}).status_code == 400  # no token
        response = post_form(client, route.path, {"modem": "m0", "receiver": "08123456789", "text": "hi"},
                             page="/login")
    assert response.status_code == 302 and urlsplit(response.headers["Location"]).path == "/login"
    assert state() == before and runner.calls == []


@pytest.mark.parametrize("route", my_routes("POST"), ids=str)
def test_every_post_needs_the_csrf_token(admin_client, route, runner, modems):
    (message,) = add_inbox(1)
    path = route.path.replace("/1/", f"/{message}/")
    before = state()
    data = {"modem": "m0", "receiver": "08123456789", "text": "hi", "code": "*123#", "imei": "356938035643809",
            "action": "enable", "pin": "1234", "browser_ms": "1700000000000"}
    for token in ({}, {"csrf_token": "forged"}):
        response = admin_client.post(path, data={**data, **token})
        assert response.status_code == 400
        assert "reload it and try again" in response.get_data(as_text=True)
    assert state() == before and runner.calls == []


# ---------------------------------------------------------------- manual SMS


@pytest.mark.parametrize("receiver, text, modem, field, message", [
    ("hello", "hi", "", "receiver", PHONE),
    ("0812'; drop table", "hi", "", "receiver", PHONE),
    ("", "hi", "", "receiver", PHONE),
    ("08123456789", "", "", "text", "the text must not be empty"),
    ("08123456789", "   ", "", "text", "the text must not be empty"),
    ("08123456789", "x" * 1601, "", "text", "the text is longer than 1600 characters"),
    ("08123456789", "a\x1bb", "", "text", "the text must not contain control characters"),
    ("08120000000", "hi", "", "receiver", "628120000000 is on the block list"),
    ("08123456789", "hi", "nope", "modem", "no modem named 'nope'"),
    ("08123456789", "hi", "off", "modem", "modem 'off' is inactive"),
])
def test_manual_sms_is_checked_beside_each_field(admin_client, modems, receiver, text, modem, field, message):
    with db.atomic():
        BlockedNumber.create(msisdn="628120000000")
    response = post_form(admin_client, "/tools/sms", {"receiver": receiver, "text": text, "modem": modem})
    page = response.get_data(as_text=True)
    assert response.status_code == 400
    assert field_error(page, field) == message
    assert SmsOutbox.select().count() == 0
    if field != "text" and text:
        assert f">{htmllib.escape(text)}</textarea>" in page, "what was typed is kept"


def test_manual_sms_queues_nothing_while_the_modem_component_is_down(admin_client, modems):
    page = admin_client.get("/tools/sms").get_data(as_text=True)
    assert re.findall(r'<option value="([^"]*)"', page) == ["", "m0", "m1"], "routed, or an active modem"
    response = post_form(admin_client, "/tools/sms", {"receiver": "08123456789", "text": "hi", "modem": "m0"})
    assert response.status_code == 200
    assert page_error(response.get_data(as_text=True)) == f"{NOT_RUNNING}: nothing queued"
    assert SmsOutbox.select().count() == 0


# ---------------------------------------------------------------- USSD, IMEI, SIM and internet


@pytest.mark.parametrize("code, message", [
    ("", "enter a USSD code such as *123#"),
    ("   ", "enter a USSD code such as *123#"),
    ('*123#"\r\nAT+CFUN=0', "a USSD code is digits, *, # and + (at most 64), such as *123# or a menu option 1"),
    ("*" * 65, "a USSD code is digits, *, # and + (at most 64), such as *123# or a menu option 1"),
])
def test_ussd_code_is_checked(admin_client, modems, code, message):
    response = post_form(admin_client, "/tools/ussd", {"modem": "m0", "code": code, "action": "run"})
    assert response.status_code == 400
    assert field_error(response.get_data(as_text=True), "code") == message


def test_ussd_needs_an_active_modem_and_says_when_the_component_is_down(admin_client, modems):
    for modem, message in (("", "choose a modem"), ("off", "modem 'off' is inactive")):
        response = post_form(admin_client, "/tools/ussd", {"modem": modem, "code": "*888#", "action": "run"})
        assert field_error(response.get_data(as_text=True), "modem") == message
    for action in ("run", "cancel"):
        response = post_form(admin_client, "/tools/ussd", {"modem": "m0", "code": "*888#", "action": action})
        assert response.status_code == 200
        assert page_error(response.get_data(as_text=True)) == NOT_RUNNING


@pytest.mark.parametrize("imei, message", [
    ("35693803564380", "an IMEI is 15 digits"),
    ("3569380356438090", "an IMEI is 15 digits"),
    ("35693803564380x", "an IMEI is 15 digits"),
    ("", "an IMEI is 15 digits"),
    ("356938035643808", "356938035643808 fails the Luhn check: with these first 14 digits the last one is 9"),
])
def test_imei_must_be_15_digits_with_its_luhn_digit(admin_client, modems, imei, message):
    response = post_form(admin_client, "/tools/imei", {"modem": "m0", "imei": imei})
    assert response.status_code == 400
    assert field_error(response.get_data(as_text=True), "imei") == message


def test_a_valid_imei_meets_a_component_that_is_down(admin_client, modems):
    response = post_form(admin_client, "/tools/imei", {"modem": "m0", "imei": "356938035643809"})
    assert response.status_code == 200
    assert page_error(response.get_data(as_text=True)) == NOT_RUNNING


@pytest.mark.parametrize("data, field, message", [
    ({"action": "enable", "pin": "12a4"}, "pin", "the current SIM PIN must be 4 to 8 digits"),
    ({"action": "enable", "pin": "123"}, "pin", "the current SIM PIN must be 4 to 8 digits"),
    ({"action": "disable", "pin": "123456789"}, "pin", "the current SIM PIN must be 4 to 8 digits"),
    ({"action": "change", "pin": "1234", "new_pin": "12x4", "new_pin2": "12x4"}, "new_pin",
     "the new SIM PIN must be 4 to 8 digits"),
    ({"action": "change", "pin": "1234", "new_pin": "5678", "new_pin2": "5679"}, "new_pin2",
     "the two new PINs differ"),
    ({"action": "sideways", "pin": "1234"}, "action", "choose what to do"),
])
def test_sim_pins_are_checked_and_never_shown_back(admin_client, modems, data, field, message):
    response = post_form(admin_client, "/tools/sim", {"modem": "m0", **data})
    page = response.get_data(as_text=True)
    assert response.status_code == 400
    assert field_error(page, field) == message
    for name in ("pin", "new_pin", "new_pin2"):
        assert re.search(rf'<input id="f-{name}" name="{name}" type="password"\s', page)
        if data.get(name):
            assert data[name] not in page
    assert state()[2] == [("m0", "", ""), ("m1", "", ""), ("off", "", "")]


def test_sim_tool_with_the_component_down_keeps_the_saved_pin(admin_client, modems):
    response = post_form(admin_client, "/tools/sim", {"modem": "m0", "action": "enable", "pin": "4321"})
    page = response.get_data(as_text=True)
    assert page_error(page) == NOT_RUNNING and "4321" not in page
    assert Modem.get(Modem.name == "m0").sim_pin == ""


def test_internet_lists_the_modems_with_internet_access_and_says_when_the_component_is_down(admin_client, modems):
    page = admin_client.get("/tools/internet").get_data(as_text=True)
    assert re.findall(r"<td>(\w+)</td><td>", page) == ["m1"], "only active modems with Internet Access on"
    assert page_error(page) == f"{NOT_RUNNING}: the links cannot be changed or shown now."
    response = post_form(admin_client, "/tools/internet", {"modem": "m1", "action": "up"})
    assert page_error(response.get_data(as_text=True)) == NOT_RUNNING
    response = post_form(admin_client, "/tools/internet", {"modem": "m0", "action": "up"}, page="/tools/internet")
    assert page_error(response.get_data(as_text=True)) == (
        "Internet Access is off for modem m0: turn it on in its modem settings")


def test_internet_without_such_modems_says_where_to_turn_it_on(admin_client):
    page = admin_client.get("/tools/internet").get_data(as_text=True)
    assert "No active modem has Internet Access on." in page and not page_error(page)


# ---------------------------------------------------------------- the inbox


def test_inbox_lists_newest_first_in_pages(admin_client):
    ids = add_inbox(45)
    with db.atomic():
        InboxMessage.update(body="<script>alert(1)</script>\nline two").where(InboxMessage.id == ids[-1]).execute()
    page = admin_client.get("/inbox").get_data(as_text=True)
    shown = [int(i) for i in re.findall(r'href="/inbox/(\d+)"', page)]
    assert shown == ids[::-1][:20]
    assert "45 messages, 45 unread" in page
    assert "&lt;script&gt;alert(1)&lt;/script&gt; ⏎ line two" in page and "<script>alert" not in page
    assert [int(i) for i in re.findall(r'href="/inbox/(\d+)"', admin_client.get("/inbox?page=3").get_data(
        as_text=True))] == ids[:5][::-1]
    assert "Page 3 of 3" in admin_client.get("/inbox?page=99").get_data(as_text=True)


def test_reading_a_message_marks_it_read(admin_client):
    first, second = add_inbox(2)
    page = admin_client.get(f"/inbox/{second}").get_data(as_text=True)
    assert '<pre class="message-body" id="message-body">message 1</pre>' in page
    assert [(m.id, m.is_read) for m in InboxMessage.select().order_by(InboxMessage.id)] == [
        (first, False), (second, True)]
    assert "2 messages, 1 unread" in admin_client.get("/inbox").get_data(as_text=True)
    assert admin_client.get("/inbox/999").status_code == 404


def test_an_incomplete_message_says_so(admin_client):
    first, second = add_inbox(2)
    with db.atomic():
        InboxMessage.update(incomplete=True, body="one [part 2 of 3 did not arrive]three").where(
            InboxMessage.id == second).execute()
    listing = admin_client.get("/inbox").get_data(as_text=True)
    assert listing.count(">incomplete</span>") == 1
    assert 'id="incomplete"' in admin_client.get(f"/inbox/{second}").get_data(as_text=True)
    assert 'id="incomplete"' not in admin_client.get(f"/inbox/{first}").get_data(as_text=True)


def test_deleting_a_message(admin_client):
    first, second = add_inbox(2)
    response = post_form(admin_client, f"/inbox/{first}/delete", page="/inbox")
    assert response.status_code == 302 and response.headers["Location"] == "/inbox"
    assert [m.id for m in InboxMessage.select()] == [second]
    assert flashes(admin_client.get("/inbox").get_data(as_text=True)) == [f"Message {first} deleted."]
    assert post_form(admin_client, f"/inbox/{first}/delete", page="/inbox").status_code == 404


def test_a_reply_is_checked_and_queues_nothing_while_the_component_is_down(admin_client, modems):
    (message,) = add_inbox(1)
    response = post_form(admin_client, f"/inbox/{message}/reply", {"text": ""}, page=f"/inbox/{message}")
    assert response.status_code == 400
    assert field_error(response.get_data(as_text=True), "text") == "the text must not be empty"
    response = post_form(admin_client, f"/inbox/{message}/reply", {"text": "ok"}, page=f"/inbox/{message}")
    assert page_error(response.get_data(as_text=True)) == f"{NOT_RUNNING}: nothing queued"
    with db.atomic():
        Modem.update(active=False).where(Modem.name == "m0").execute()
    response = post_form(admin_client, f"/inbox/{message}/reply", {"text": "ok"}, page=f"/inbox/{message}")
    assert page_error(response.get_data(as_text=True)) == "cannot reply through m0: modem 'm0' is inactive"
    assert SmsOutbox.select().count() == 0


def test_a_reply_to_a_name_is_refused_clearly(admin_client, modems):
    with db.atomic():
        message = InboxMessage.create(modem="m0", sender="TELKOMSEL", body="Promo").id
    response = post_form(admin_client, f"/inbox/{message}/reply", {"text": "stop"}, page=f"/inbox/{message}")
    assert page_error(response.get_data(as_text=True)) == (
        f"cannot reply to TELKOMSEL: {PHONE}")


def test_reading_the_sims_with_the_component_down(admin_client, modems):
    response = post_form(admin_client, "/inbox/refresh", page="/inbox", follow_redirects=True)
    assert flashes(response.get_data(as_text=True)) == [f"{NOT_RUNNING}: the SIMs were not read."]


# ---------------------------------------------------------------- device time, restart and reboot


def test_device_time_is_set_from_the_browsers_clock(admin_client, runner):
    page = admin_client.get("/system/time").get_data(as_text=True)
    now_ms = int(re.search(r'data-ms="(\d+)"', page).group(1))
    assert "(Asia/Jakarta)" in page and 'src="/static/devicetime.js"' in page
    assert '<input type="hidden" name="browser_ms" id="browser-ms" value="">' in page

    browser_ms = 1_800_000_000_000  # 2027-01-15 08:00:00 UTC
    response = post_form(admin_client, "/system/time", {"browser_ms": str(browser_ms)})
    page = htmllib.unescape(response.get_data(as_text=True))
    assert response.status_code == 200
    assert runner.calls == [["timedatectl", "set-time", "2027-01-15 08:00:00 UTC"]]
    assert "now follows your browser: 2027-01-15 15:00:00" in page, "shown in the device's zone"

    runner.answer = (1, "Failed to set time: Automatic time synchronization is enabled")
    response = post_form(admin_client, "/system/time", {"browser_ms": str(now_ms - 3 * 86_400_000)})
    page = htmllib.unescape(response.get_data(as_text=True))
    assert response.status_code == 502, "nothing was set: never a success"
    assert "The device time was not changed: timedatectl set-time " in page
    assert "UTC failed (exit status 1): Failed to set time: Automatic time synchronization is enabled" in page
    assert "The device clock is 3.0 days ahead of your browser's clock." in page

    response = post_form(admin_client, "/system/time", {"browser_ms": ""})
    assert response.status_code == 400
    assert field_error(response.get_data(as_text=True), "browser_ms") == (
        "your browser sent no clock: this needs JavaScript on")


@pytest.mark.parametrize("what, argv", [
    ("restart", ["systemctl", "--no-block", "restart", "otppi.target"]),
    ("reboot", ["systemctl", "--no-block", "reboot"]),
])
def test_restart_and_reboot_run_only_after_confirmation(admin_client, runner, what, argv):
    page = admin_client.get(f"/system/{what}").get_data(as_text=True)
    assert runner.calls == [], "the confirmation page runs nothing"
    assert re.search(r'<form method="post"[^>]*>\s*<input type="hidden" name="csrf_token"', page)
    response = admin_client.post(f"/system/{what}", data={"csrf_token": csrf(admin_client, f"/system/{what}")})
    assert runner.calls == [argv]
    assert response.status_code == 200
    assert ("The service is restarting." if what == "restart" else "The device is rebooting.") in (
        response.get_data(as_text=True))


@pytest.mark.parametrize("answer, shown", [
    ((1, "Failed to restart otppi.target: Access denied"),
     "systemctl restart otppi.target failed (exit status 1): Failed to restart otppi.target: Access denied"),
    ((127, ""), "systemctl restart otppi.target failed (exit status 127): no reason given"),
    (PermissionError("not allowed"),
     "systemctl restart otppi.target failed (exit status -1): PermissionError: not allowed"),
])
def test_a_failed_restart_is_shown(admin_client, runner, answer, shown):
    runner.answer = answer
    response = post_form(admin_client, "/system/restart")
    assert response.status_code == 502
    assert page_error(response.get_data(as_text=True)) == shown
    assert "The service is restarting." not in response.get_data(as_text=True)


def test_the_default_runner_reports_a_missing_program_and_a_failure():
    assert system.run_command(["/nonexistent/systemctl", "restart"]) == (
        127, "/nonexistent/systemctl is not installed: this system is not run by systemd")
    assert system.run_command(["sh", "-c", "echo Access denied >&2; exit 4"]) == (4, "Access denied")
    assert system.run_command(["sh", "-c", "exec sleep 5"], timeout=0.2) == (124, "sh did not finish within 0.2 s")
