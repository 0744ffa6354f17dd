"""The modem tool pages against the real modem component and simulated modems behind real ptys:
USSD sessions, manual SMS (and seeing it on the monitor), the inbox and its replies, the IMEI tool on
a modem that can and one that cannot, the SIM PIN lock, and the mobile internet state."""

from __future__ import annotations

import html as htmllib
import re

import pytest

from otppi import keys
from otppi.admin.app import create_app
from otppi.luhn import luhn_digit
from otppi.msisdn import mask
from otppi.store.db import close_database, open_database

from ..helpers import stored_secret, wait_until
from .conftest import create_admin, post_form
from .test_monitor import SseReader
from .test_tools import field_error, flashes, page_error

pytestmark = pytest.mark.slow


@pytest.fixture
def web():
    """A logged-in test client of an admin app on a gateway's root (its store, keys and sockets)."""

    def make(gw, **config):
        open_database(gw.paths.database, sealing_key=keys.otp_key(gw.paths))
        app = create_app(gw.paths, {"TESTING": True, "OTPPI_MANUAL_WAIT": 30.0, "OTPPI_MONITOR_POLL": 0.05,
                                    "OTPPI_MONITOR_LIFETIME": 20.0, **config})
        client = app.test_client()
        assert create_admin(client).status_code == 302  # the first administrator is logged in at once
        return client

    yield make
    close_database()


def ussd_reply(page: str) -> str:
    return htmllib.unescape(re.search(r'<pre class="reply" id="ussd-reply">(.*?)</pre>', page, re.S).group(1))


def restarted(gw, index: int, name: str, ate0_before: int) -> None:
    """A saved SIM PIN restarts the modem's worker: wait until it has opened the modem again."""
    wait_until(lambda: gw.sim[index].commands_seen.count("ATE0") > ate0_before, what=f"{name} reopened")
    gw.wait_states({name: "ready"})


def outbox(gw) -> list[tuple]:
    return gw.rows("select kind, source, receiver, via, state, modem, body from sms_outbox order by id")


def test_ussd_menu_answered_then_cancelled(gateway_factory, web):
    gw = gateway_factory(count=1)
    gw.add_modem("m0", 0)
    gw.start_modem(wait_for=["m0"])
    client = web(gw)

    page = post_form(client, "/tools/ussd", {"modem": "m0", "code": "*123#", "action": "run"}).get_data(as_text=True)
    assert ussd_reply(page) == "1 Paket Internet\n2 Info Pulsa"
    assert 'id="f-answer"' in page, "the session is open: a field to answer it"
    page = post_form(client, "/tools/ussd", {"modem": "m0", "code": "1", "action": "run"}).get_data(as_text=True)
    assert ussd_reply(page) == "1 10GB 30hr Rp50rb\n2 25GB 30hr Rp100rb"
    page = post_form(client, "/tools/ussd", {"modem": "m0", "action": "cancel"}).get_data(as_text=True)
    assert "USSD session on m0 ended." in page
    assert gw.sim[0].call(lambda: gw.sim[0].ussd_session) is None, "AT+CUSD=2 reached the modem"

    page = post_form(client, "/tools/ussd", {"modem": "m0", "code": "*888#", "action": "run"}).get_data(as_text=True)
    assert ussd_reply(page) == "Sisa pulsa Anda Rp 25.000. Aktif s/d 31-12-2026."
    assert 'id="f-answer"' not in page, "a final answer closes the session"
    response = post_form(client, "/tools/ussd", {"modem": "m0", "code": "*999#", "action": "run"})
    assert response.status_code == 200
    assert page_error(response.get_data(as_text=True)) == "the operator does not support this USSD code"


def test_manual_sms_reaches_the_modem_it_names_and_shows_on_the_monitor(gateway_factory, web):
    gw = gateway_factory(count=2)
    gw.add_modem("m0", 0, "--default")
    gw.add_modem("m1", 1)
    gw.start_modem(wait_for=["m0", "m1"])
    client = web(gw)

    response = post_form(client, "/tools/sms", {"receiver": "0812 3456 789", "text": "Tes modem\r\nbaris dua",
                                                "modem": "m1"}, follow_redirects=True)
    assert flashes(response.get_data(as_text=True)) == ["Sent to 628123456789 via m1."]
    assert [(m.number, m.text) for m in gw.sent(1)] == [("628123456789", "Tes modem\nbaris dua")]
    assert gw.sent(0) == []
    assert outbox(gw) == [("manual", "admin", "628123456789", "m1", "sent", "m1", None)]

    response = post_form(client, "/tools/sms", {"receiver": "+62 812-3456-7890", "text": "routed", "modem": ""},
                         follow_redirects=True)
    assert flashes(response.get_data(as_text=True)) == ["Sent to 6281234567890 via m0."]

    reader = SseReader(client.get("/monitor/events?after=0", buffered=False))
    try:
        first = reader.next_of("message").json
        assert (first["kind"], first["source"], first["modem"], first["receiver"], first["result"]) == (
            "sms", "admin", "m1", mask("628123456789"), "sent")
    finally:
        reader.close()


def test_manual_sms_failure_and_an_outcome_not_known_in_time(gateway_factory, web):
    gw = gateway_factory(count=1)
    gw.add_modem("m0", 0)
    late = gw.sim_dir / "late"  # its device is not there yet: a message for it waits in the queue
    gw.cli("modem", "add", "late", "--port", str(late))
    gw.start_modem(wait_for=["m0"])
    gw.wait_states({"late": "disconnected"})
    client = web(gw)
    gw.sim[0].fail_sends(5)

    response = post_form(client, "/tools/sms", {"receiver": "08123456789", "text": "will fail", "modem": "m0"})
    error = page_error(response.get_data(as_text=True))
    assert error.startswith("Not sent to 628123456789 via m0: ") and "+CMS ERROR: 38" in error
    assert ">will fail</textarea>" in response.get_data(as_text=True), "kept to try again"

    client.application.config["OTPPI_MANUAL_WAIT"] = 0.5
    response = post_form(client, "/tools/sms", {"receiver": "08123456789", "text": "later", "modem": "late"},
                         follow_redirects=True)
    assert flashes(response.get_data(as_text=True)) == [
        "Queued for 628123456789: the outcome is not known after 0.5 s; the monitor shows it when it comes."]
    assert outbox(gw)[-1][3:5] == ("late", "queued")


def test_inbox_read_reply_through_the_modem_it_came_in_on_and_sim_refresh(gateway_factory, web):
    gw = gateway_factory(count=2)
    gw.add_modem("m0", 0, "--default")
    gw.add_modem("m1", 1)
    gw.start_modem(wait_for=["m0", "m1"])
    client = web(gw)

    gw.sim[1].receive_sms("+628111222333", "Halo\nbaris <dua>")
    wait_until(lambda: gw.rows("select count(*) from inbox_message")[0][0] == 1, what="the SMS in the inbox")
    ((message_id,),) = gw.rows("select id from inbox_message")
    page = client.get("/inbox").get_data(as_text=True)
    assert "628111222333" in page and "Halo ⏎ baris &lt;dua&gt;" in page and "1 unread" in page
    page = client.get(f"/inbox/{message_id}").get_data(as_text=True)
    assert '<pre class="message-body" id="message-body">Halo\nbaris &lt;dua&gt;</pre>' in page
    assert gw.rows("select is_read from inbox_message") == [(1,)]

    response = post_form(client, f"/inbox/{message_id}/reply", {"text": "Terima kasih"}, page=f"/inbox/{message_id}",
                         follow_redirects=True)
    assert flashes(response.get_data(as_text=True)) == ["Sent to 628111222333 via m1."]
    assert [(m.number, m.text) for m in gw.sent(1)] == [("628111222333", "Terima kasih")]
    assert gw.sent(0) == [], "not through the default modem: through the one it came in on"
    assert outbox(gw) == [("manual", "admin", "628111222333", "m1", "sent", "m1", None)]

    # A message the modem stored without announcing it (+CNMI mode 0) waits on the SIM for a refresh.
    gw.sim[0].call(setattr, gw.sim[0].settings, "cnmi", (0, 0, 0, 0, 0))
    gw.sim[0].receive_sms("+628444", "quiet")
    response = post_form(client, "/inbox/refresh", page="/inbox", follow_redirects=True)
    assert flashes(response.get_data(as_text=True)) == ["SIMs read. m0: 1 new; m1: 0 new."]
    assert gw.rows("select modem, sender, body from inbox_message order by id")[1] == ("m0", "628444", "quiet")


def test_imei_where_the_modem_can_and_refusal_where_it_cannot(gateway_factory, web):
    gw = gateway_factory(count=2, profiles=["ec25", "wavecom"])
    gw.add_modem("quectel", 0)
    gw.add_modem("wavecom", 1)
    gw.start_modem(wait_for=["quectel", "wavecom"])
    client = web(gw)
    new = "35693803564380" + luhn_digit("35693803564380")

    response = post_form(client, "/tools/imei", {"modem": "quectel", "imei": new}, follow_redirects=True)
    assert flashes(response.get_data(as_text=True)) == [
        f"IMEI of quectel is now {new} (restart the modem for the network to see it)."]
    assert gw.sim[0].imei == new

    before = gw.sim[1].imei
    response = post_form(client, "/tools/imei", {"modem": "wavecom", "imei": new})
    assert page_error(response.get_data(as_text=True)) == "this modem cannot change its IMEI: wavecom refused AT+EGMR"
    assert gw.sim[1].imei == before


def test_sim_pin_enable_then_disable_never_showing_the_pin(gateway_factory, web):
    gw = gateway_factory(count=1)
    gw.add_modem("m0", 0)
    gw.start_modem(wait_for=["m0"])
    client = web(gw)
    modem = gw.sim[0]

    ate0 = modem.commands_seen.count("ATE0")
    response = post_form(client, "/tools/sim", {"modem": "m0", "action": "enable", "pin": "1234"},
                         follow_redirects=True)
    page = response.get_data(as_text=True)
    assert flashes(page) == ["SIM PIN lock enabled on m0; the PIN is saved in its modem settings."], page_error(page)
    assert "1234" not in page and "on, PIN saved" in page
    assert modem.sim.pin_enabled is True and modem.sim.pin == "1234"
    assert stored_secret(gw.root, "modem", "sim_pin", "name = ?", "m0") == "1234"
    restarted(gw, 0, "m0", ate0)

    response = post_form(client, "/tools/sim", {"modem": "m0", "action": "disable", "pin": "1357"})
    page = response.get_data(as_text=True)
    assert page_error(page) == "m0: the SIM refused the PIN (wrong PIN)"
    assert "1357" not in page and modem.sim.pin_enabled is True

    ate0 = modem.commands_seen.count("ATE0")
    response = post_form(client, "/tools/sim", {"modem": "m0", "action": "disable", "pin": "1234"},
                         follow_redirects=True)
    assert flashes(response.get_data(as_text=True)) == [
        "SIM PIN lock disabled on m0; the PIN is removed from its modem settings."]
    assert modem.sim.pin_enabled is False
    assert stored_secret(gw.root, "modem", "sim_pin", "name = ?", "m0") == ""
    restarted(gw, 0, "m0", ate0)

    response = post_form(client, "/tools/sim", {"modem": "m0", "action": "change", "pin": "1234",
                                                "new_pin": "1111", "new_pin2": "1111"})
    assert page_error(response.get_data(as_text=True)).startswith("m0: the SIM does not allow this now")
    assert field_error(response.get_data(as_text=True), "pin") == ""


def test_internet_state_and_disconnect(gateway_factory, web):
    gw = gateway_factory(count=1)
    gw.add_modem("m0", 0)
    gw.cli("modem", "set", "m0", "internet_access", "true")
    gw.cli("modem", "set", "m0", "apn", "internet")
    gw.start_modem(wait_for=["m0"])
    client = web(gw)

    page = client.get("/tools/internet").get_data(as_text=True)
    assert re.search(r'<span class="badge " id="state-m0">down</span>', page)
    assert not page_error(page)
    response = post_form(client, "/tools/internet", {"modem": "m0", "action": "down"}, follow_redirects=True)
    assert flashes(response.get_data(as_text=True)) == ["m0: internet down."]
