"""The WebSocket feeder end to end: its own process, ``otppi-wsbroker``, the real store and modem component.

The test plays the app server: a WebSocket client of the same broker, publishing requests on the device's
topic and reading answers on callback topics. WSMessageBroker keeps nothing for absent subscribers, so every
test waits for the feeder's "connected" event before it publishes.
"""

from __future__ import annotations

import json
import re
from types import SimpleNamespace
from typing import Any

import pytest

from otppi import codes
from otppi.feeders.ws import endpoint

from .. import brokers
from ..helpers import wait_until
from .process import FeederProcess
from ..wsbroker_process import DEVICE_PASSWORD, DEVICE_USER, WsBroker

pytestmark = pytest.mark.slow

TOPIC = "sms"


class Site:
    """One device (simulated modem, modem component, ws feeder) and the app server's broker."""

    def __init__(self, gw, broker: WsBroker):
        self.gw, self.broker = gw, broker
        self.feeder: FeederProcess | None = None

    def configure(self, **overrides: Any) -> None:
        values = {"enabled": "true", "allow_plain_login": "true", "host": self.broker.host, "port": self.broker.port, "path": self.broker.path,
                  "username": DEVICE_USER, "password": DEVICE_PASSWORD, "topic": TOPIC,
                  "reconnect_delay": "0.3", "timeout": "10"}
        values.update(overrides)
        values["password"] = values.pop("password")  # last: a new host, port or TLS clears it
        for key, value in values.items():
            self.gw.cli("settings", "set", f"feeder_ws.{key}", str(value))

    def start_feeder(self) -> FeederProcess:
        self.feeder = FeederProcess(self.gw.root, "ws").start()
        return self.feeder

    def events(self) -> list[tuple[str, str]]:
        return self.gw.rows("select result, cause from event where kind = 'feeder' and source = 'ws' order by id")

    def connections(self) -> int:
        return sum(result == "connected" for result, _ in self.events())

    def wait_connections(self, count: int, timeout: float = 20.0) -> None:
        wait_until(lambda: self.feeder.running() and self.connections() >= count, timeout=timeout,
                   what=f"{count} feeder connection(s); events {self.events()[-4:]}; {self.feeder.log_text()[-800:]}")

    def texts(self) -> list[str]:
        return [m.text for m in self.gw.sent(0)]

    def answer(self, ws, timeout: float = 30.0) -> dict[str, Any]:
        try:
            return json.loads(ws.recv(timeout=timeout))
        except TimeoutError:
            raise AssertionError(f"no answer on {ws.request.path}; feeder: {self.feeder.log_text()[-1500:]}; "
                                 f"modem: {self.gw.log_text()[-1500:]}") from None

    def wait_texts(self, texts: list[str], what: str) -> None:
        wait_until(lambda: self.texts() == texts, timeout=30,
                   what=f"{what}: {texts} at the modem (have {self.texts()}; {self.feeder.log_text()[-1000:]})")


@pytest.fixture
def site(gateway_factory):
    gw = gateway_factory(count=1)
    gw.add_modem("m", 0, "--default")
    gw.start_modem(wait_for=["m"])
    made = Site(gw, WsBroker(gw.root.parent / "wsb"))
    yield made
    code = made.feeder.stop() if made.feeder is not None else 0
    if made.feeder is not None:
        made.feeder.close()
    made.broker.stop()
    assert code == 0, f"the feeder must stop cleanly on SIGTERM: {made.feeder.log_text()[-2000:]}"


def request(command: str, callback: str | None = None, **data: Any) -> str:
    body: dict[str, Any] = {"command": command, "data": {"date_time": 1629685778, **data}}
    if callback:
        body["callback_topic"] = callback
    return json.dumps(body)




# ---------------------------------------------------------------- the contract over WebSocket


def test_the_handshake_target_is_the_spec_one() -> None:
    spec = SimpleNamespace(ssl=False, host="domain.example", port=8000, path="/ws")
    assert endpoint(spec, "sms") == "ws://domain.example:8000/ws?topic=sms"
    odd = SimpleNamespace(ssl=True, host="fd00::1", port=443, path="broker")
    assert endpoint(odd, "otp/a b&c") == "wss://[fd00::1]:443/broker?topic=otp%2Fa%20b%26c"



def test_every_command_reaches_the_store_and_the_modem(site: Site) -> None:
    site.broker.start()
    site.configure(allow_ussd="true")  # request-ussd is off for a new subscriber
    site.start_feeder()
    site.wait_connections(1)
    gw = site.gw
    with site.broker.client(TOPIC) as app, site.broker.client("answers") as answers:
        app.send(request("send-sms", id="ws-1", receiver="08126666666", message="Hello over WebSocket"))
        site.wait_texts(["Hello over WebSocket"], "the SMS")
        wait_until(lambda: gw.rows("select receiver, state from sms_outbox") == [("628126666666", "sent")],
                   what="the outbox row marked sent")

        app.send(request("send-email", id="ws-mail", receiver="someone@domain.tld", message="Hello by email"))
        wait_until(lambda: gw.rows("select receiver from email_outbox") == [("someone@domain.tld",)], timeout=30,
                   what=f"the email in the outbox ({gw.rows('select receiver, state from email_outbox')})")

        app.send(request("block-msisdn", "answers", receiver="08127777777"))
        assert site.answer(answers)["response_code"] == codes.SUCCESS
        assert gw.rows("select msisdn from blocked_number") == [("628127777777",)]
        app.send(request("send-sms", "answers", id="ws-blocked", receiver="08127777777", message="no"))
        assert site.answer(answers)["response_code"] == codes.BLOCKED
        app.send(request("unblock-msisdn", "answers", receiver="08127777777"))
        assert site.answer(answers)["response_code"] == codes.SUCCESS
        assert gw.rows("select msisdn from blocked_number") == []

        app.send(request("get-modem-list", "answers"))
        assert [m["name"] for m in site.answer(answers)["data"]["modems"]] == ["m"]
        app.send(request("request-ussd", "answers", modem="m", code="*888#"))
        ussd = site.answer(answers)
        assert ussd["response_code"] == codes.SUCCESS and ussd["data"]["reply"]
        app.send(request("echo", TOPIC, note="same topic"))  # answered on the device's own connection
        assert site.answer(app)["data"]["note"] == "same topic"
    assert "Hello over WebSocket" not in site.feeder.log_text()


def test_otp_and_sms_answers_arrive_on_the_callback_topics(site: Site) -> None:
    site.broker.start()
    site.configure()
    site.start_feeder()
    site.wait_connections(1)
    with site.broker.client(TOPIC) as app, site.broker.client("answers") as answers:
        app.send(request("create-otp", TOPIC, receiver="08126666666", reference="ws-ref-1",
                         message="Kode OTP Anda %s", param1="100000"))
        created = site.answer(app)  # the final outcome, after the modem took it
        assert (created["command"], created["response_code"]) == ("create-otp", codes.SUCCESS)
        code = site.texts()[-1].rsplit(" ", 1)[1]
        check = {"receiver": "+628126666666", "reference": "ws-ref-1", "otp": code, "param1": "100000"}
        app.send(request("validate-otp", "answers", **check))
        assert site.answer(answers)["response_code"] == codes.SUCCESS
        app.send(request("validate-otp", "answers", **check))
        assert site.answer(answers)["response_code"] == codes.OTP_INVALID, "an OTP is good once"

        app.send(request("send-sms", "answers", id="ws-cb", receiver="08126666666", message="with a callback"))
        sent = site.answer(answers)
        assert (sent["response_code"], sent["data"]["id"]) == (codes.SUCCESS, "ws-cb")
        assert site.texts()[-1] == "with a callback", "000 is said only once the modem sent it"
    assert code not in site.feeder.log_text()


def test_bad_input_is_answered_1300_and_the_feeder_carries_on(site: Site) -> None:
    site.broker.start()
    site.configure()
    site.start_feeder()
    site.wait_connections(1)
    huge = "x" * 60_000
    with site.broker.client(TOPIC) as app, site.broker.client("answers") as answers:
        app.send("not json at all {")
        app.send(b"\xff\xfe binary garbage")
        app.send("[1, 2, 3]")
        app.send(json.dumps({"command": "send-sms", "callback_topic": "answers",
                             "data": {"id": 7, "receiver": 628126666666, "message": ["not", "text"]}}))
        wrong_types = site.answer(answers)
        assert wrong_types["response_code"] == codes.MALFORMED and "receiver" in wrong_types["message"]
        app.send(request("send-sms", "answers", id="huge", receiver="08126666666", message=huge))
        assert site.answer(answers)["response_code"] == codes.MALFORMED
        app.send(request("no-such-command", "answers"))
        assert site.answer(answers)["response_code"] == codes.MALFORMED
        app.send(request("send-sms", id="after", receiver="08126666666", message="still serving"))
        site.wait_texts(["still serving"], "a good request after the bad ones")
    log = site.feeder.log_text()
    assert log.count("refused a message") == 6
    assert huge[:100] not in log and "not json at all" not in log
    assert site.connections() == 1, "bad input never costs the connection"


# ---------------------------------------------------------------- connection life


def test_a_restarted_broker_is_reconnected_with_backoff(site: Site) -> None:
    site.broker.start()
    site.configure()
    site.start_feeder()
    site.wait_connections(1)
    site.broker.stop()
    wait_until(lambda: sum(r == "disconnected" for r, _ in site.events()) >= 2,
               what="the lost link and a failed retry")
    delays = [float(d) for d in re.findall(r"retrying in ([0-9.]+) s", site.feeder.log_text())]
    assert delays and 0.15 <= delays[0] <= 0.3, f"the backoff starts near Reconnect Delay, jittered: {delays}"
    site.broker.start()
    site.wait_connections(2)
    with site.broker.client(TOPIC) as app:
        app.send(request("send-sms", id="after-restart", receiver="08126666666", message="after the restart"))
        site.wait_texts(["after the restart"], "a request after the broker came back")


def test_wrong_credentials_are_said_clearly_and_fixed_live(site: Site) -> None:
    site.broker.start()
    site.configure(password="not the password")
    feeder = site.start_feeder()
    wait_until(lambda: len(site.events()) >= 2, what="two refused attempts")
    result, cause = site.events()[0]
    assert result == "disconnected" and "HTTP 401" in cause and DEVICE_USER in cause
    assert "ERROR" in feeder.log_text() and "check feeder_ws.username and feeder_ws.password" in feeder.log_text()
    assert "not the password" not in feeder.log_text()
    feeder.running()
    site.gw.cli("settings", "set", "feeder_ws.password", DEVICE_PASSWORD)
    site.wait_connections(1)
    with site.broker.client(TOPIC) as app:
        app.send(request("send-sms", id="fixed", receiver="08126666666", message="credentials fixed"))
        site.wait_texts(["credentials fixed"], "a request once the password was fixed")


def test_wss_needs_the_ca_file_and_works_with_it(site: Site) -> None:
    ca = brokers.TestCA.create(site.gw.root.parent / "ca")
    site.broker = WsBroker(site.gw.root.parent / "wsb-tls", tls=ca).start()
    site.configure(ssl="true", ca_file="")
    feeder = site.start_feeder()
    wait_until(lambda: site.events(), what="the refused TLS handshake")
    result, cause = site.events()[0]
    assert result == "disconnected" and "certificate was not verified" in cause and "feeder_ws.ca_file" in cause
    site.gw.cli("settings", "set", "feeder_ws.ca_file", str(ca.ca))
    site.wait_connections(1)
    with site.broker.client(TOPIC) as app, site.broker.client("answers") as answers:
        app.send(request("send-sms", "answers", id="tls", receiver="08126666666", message="over wss"))
        assert site.answer(answers)["response_code"] == codes.SUCCESS  # the short-lived callback link is wss too
    assert site.texts() == ["over wss"]
    assert "ERROR" in feeder.log_text()


def test_disabled_idles_then_enabling_live_connects(site: Site) -> None:
    site.broker.start()
    site.configure(enabled="false")
    feeder = site.start_feeder()
    assert "STATUS=idle" in feeder.status
    site.gw.cli("settings", "set", "feeder_ws.enabled", "true")
    site.wait_connections(1)
    site.gw.cli("settings", "set", "feeder_ws.enabled", "false")
    wait_until(lambda: site.events()[-1] == ("disconnected", "settings changed"), what="the feeder to let go")
    assert "subscribed" in site.broker.log_text() and "left 'sms'" in site.broker.log_text()
    assert site.connections() == 1


def test_refresh_connection_reconnects_and_loses_nothing_that_arrived(site: Site) -> None:
    site.broker.start()
    site.configure(refresh_connection="1")
    site.start_feeder()
    site.wait_connections(3)
    assert ("disconnected", "refresh") in site.events()
    with site.broker.client(TOPIC) as app:
        before = site.connections()
        site.wait_connections(before + 1)  # send right after a fresh connect
        for i in range(5):
            app.send(request("send-sms", id=f"refresh-{i}", receiver="08126666666", message=f"r{i}"))
        wait_until(lambda: sorted(site.texts()) == [f"r{i}" for i in range(5)], what="five SMS across refreshes")
