"""The MQTT feeder end to end: its own process, a real mosquitto, the real store and modem component."""

from __future__ import annotations

import json
import queue
import sqlite3
import uuid
from pathlib import Path
from typing import Any

import paho.mqtt.client as mqtt
import pytest
from paho.mqtt.enums import CallbackAPIVersion

from otppi import codes
from otppi.paths import Paths

from ..brokers import have
from ..helpers import otppi, wait_until

pytestmark = [
    pytest.mark.slow,
    pytest.mark.skipif(not have("mosquitto"), reason="mosquitto is missing: ./build.sh test installs it"),
]


# ---------------------------------------------------------------- the device side


def rows(root: Path, sql: str, *args: Any) -> list[tuple]:
    con = sqlite3.connect(Paths(root).database, timeout=15)
    try:
        return con.execute(sql, args).fetchall()
    finally:
        con.close()


def feeder_events(root: Path) -> list[tuple[str, str]]:
    return rows(root, "select result, cause from event where kind = 'feeder' and source = 'mqtt' order by id")


def email_keys(root: Path) -> list[str]:
    return [key for (key,) in rows(root, "select message_key from email_outbox")]


def configure(root: Path, broker, **overrides: Any) -> dict[str, Any]:
    """Settings through the real CLI, as an operator would; a topic and Client ID of this test's own."""
    tag = uuid.uuid4().hex[:10]
    values = {"enabled": "true", "allow_plain_login": "true", "host": broker.host, "port": broker.port, "username": broker.user,
              "password": broker.password, "topic": f"otp/{tag}", "client_id": f"otppi-{tag}",
              "reconnect_delay": "0.2", "timeout": "5"}
    values.update(overrides)
    values["password"] = values.pop("password")  # last: a new host, port or TLS clears it
    for key, value in values.items():
        otppi(root, "settings", "set", f"feeder_mqtt.{key}", str(value))
    return values


@pytest.fixture
def feeders(feeder_processes):
    # A 2 s watchdog: the tests hear the feeder's WATCHDOG=1 pings while it consumes.
    return lambda root, name="feeder-mqtt": feeder_processes(root, "mqtt", name, WATCHDOG_USEC="2000000")


# ---------------------------------------------------------------- the app server side


class AppServer:
    """Publishes requests with QoS 1 (each confirmed by the broker) and reads answers on its callback topic."""

    def __init__(self, broker, **tls: Any):
        self.client = mqtt.Client(CallbackAPIVersion.VERSION2, client_id=f"app-{uuid.uuid4().hex[:8]}",
                                  protocol=mqtt.MQTTv5)
        self.client.username_pw_set(broker.user, broker.password)
        self.answers: queue.Queue[dict[str, Any]] = queue.Queue()
        self.callback = f"answers/{uuid.uuid4().hex[:10]}"
        self.client.on_message = lambda client, userdata, message: self.answers.put(json.loads(message.payload))
        self.client.connect(broker.host, broker.port)
        subscribed: queue.Queue[int] = queue.Queue()
        self.client.on_subscribe = lambda client, userdata, mid, reasons, properties: subscribed.put(mid)
        self.client.loop_start()
        _, mid = self.client.subscribe(self.callback, qos=1)
        assert subscribed.get(timeout=10) == mid

    def __enter__(self) -> "AppServer":
        return self

    def __exit__(self, *exc: object) -> None:
        self.client.disconnect()
        self.client.loop_stop()

    def send(self, topic: str, *requests: dict[str, Any] | bytes) -> None:
        infos = [self.client.publish(topic, r if isinstance(r, bytes) else json.dumps(r), qos=1) for r in requests]
        for info in infos:
            info.wait_for_publish(30)
            assert info.is_published(), "the broker did not confirm a request"

    def request(self, command: str, callback: bool = True, **data: Any) -> dict[str, Any]:
        body: dict[str, Any] = {"command": command, "data": {"date_time": 1629685778, **data}}
        if callback:
            body["callback_topic"] = self.callback
        return body

    def answer(self, timeout: float = 20) -> dict[str, Any]:
        try:
            return self.answers.get(timeout=timeout)
        except queue.Empty:
            raise AssertionError("no answer on the callback topic") from None

    def answers_until(self, done, timeout: float = 20) -> list[dict[str, Any]]:
        """Answers in arrival order, up to and including the first one *done* accepts."""
        got = []
        while not got or not done(got[-1]):
            got.append(self.answer(timeout))
        return got


def broker_log(broker) -> str:
    return broker.log.read_text(errors="replace")


# ---------------------------------------------------------------- every command, end to end


def test_every_command_end_to_end_through_the_modem(gateway_factory, mqtt_broker, feeders) -> None:
    gw = gateway_factory(count=1)
    gw.add_modem("m", 0, "--default")
    gw.start_modem(wait_for=["m"])
    settings = configure(gw.root, mqtt_broker, allow_ussd="true")  # request-ussd is off for a new subscriber
    feeder = feeders(gw.root)
    feeder.connected()
    topic = settings["topic"]
    with AppServer(mqtt_broker) as app:
        app.send(topic, app.request("send-sms", id="mq-1", receiver="08126666666", message="hello over mqtt"))
        answer = app.answer()
        assert answer["response_code"] == codes.SUCCESS and answer["data"]["id"] == "mq-1", answer
        assert [(m.number, m.text) for m in gw.sent(0)] == [("628126666666", "hello over mqtt")], "sent first"
        assert gw.rows("select state from sms_outbox where message_key = 'send-sms:mq-1'") == [("sent",)]

        app.send(topic, app.request("create-otp", receiver="08127777777", reference="mq-otp-1"))
        answer = app.answer()
        assert (answer["command"], answer["response_code"]) == ("create-otp", codes.SUCCESS), answer
        code = gw.sent(0)[-1].text.rsplit(" ", 1)[1]
        wrong = "0" * len(code) if code != "0" * len(code) else "1" * len(code)
        check = {"receiver": "08127777777", "reference": "mq-otp-1"}
        app.send(topic, app.request("validate-otp", otp=wrong, **check), app.request("validate-otp", otp=code, **check))
        assert [a["response_code"] for a in (app.answer(), app.answer())] == [codes.OTP_INVALID, codes.SUCCESS]

        app.send(topic, app.request("block-msisdn", receiver="08128888888"),
                 app.request("send-sms", id="mq-2", receiver="08128888888", message="never sent"),
                 app.request("unblock-msisdn", receiver="08128888888"))
        answers = [app.answer() for _ in range(3)]
        assert [(a["command"], a["response_code"]) for a in answers] == [
            ("block-msisdn", codes.SUCCESS), ("send-sms", codes.BLOCKED), ("unblock-msisdn", codes.SUCCESS)]
        assert gw.rows("select count(*) from blocked_number") == [(0,)]

        app.send(topic, app.request("get-modem-list"), app.request("request-ussd", modem="m", code="*888#"),
                 app.request("echo", note="still here"))
        modems, ussd, echo = app.answer(), app.answer(), app.answer()
        assert [m["name"] for m in modems["data"]["modems"]] == ["m"]
        assert ussd["response_code"] == codes.SUCCESS and ussd["data"]["reply"], ussd
        assert echo["data"] == {"date_time": 1629685778, "note": "still here"}

        app.send(topic, app.request("send-email", callback=False, id="mq-mail", receiver="someone@example.com",
                                    message="mail over mqtt"))
        wait_until(lambda: email_keys(gw.root) == ["send-email:mq-mail"], what="the email in the outbox")
    assert len(gw.sent(0)) == 2, "the blocked number got nothing"
    log = feeder.log_text()
    assert "hello over mqtt" not in log and code not in log and "mail over mqtt" not in log, "no bodies in logs"


# ---------------------------------------------------------------- nothing lost


def test_messages_published_while_the_feeder_is_down_arrive_when_it_is_back(device, mqtt_broker, feeders) -> None:
    root = device()
    topic = configure(root, mqtt_broker)["topic"]
    feeder = feeders(root)
    feeder.connected()
    assert feeder.stop() == 0  # the session and its subscription stay with the broker
    with AppServer(mqtt_broker) as app:
        app.send(topic, *(app.request("send-email", callback=False, id=f"down-{i}", receiver="a@example.com",
                                      message=f"m{i}") for i in range(50)))
    feeder.start()
    feeder.connected()
    wait_until(lambda: len(email_keys(root)) >= 50, what="the 50 messages queued while down")
    assert sorted(email_keys(root)) == sorted(f"send-email:down-{i}" for i in range(50))
    assert "resumed session" in feeder.log_text()


def test_a_feeder_killed_mid_stream_loses_nothing(device, mqtt_broker, feeders) -> None:
    """Messages delivered but not yet acknowledged are delivered again; ids make the repeats harmless."""
    root = device()
    topic = configure(root, mqtt_broker)["topic"]
    feeder = feeders(root)
    feeder.connected()
    total = 400
    with AppServer(mqtt_broker) as app:
        app.send(topic, *(app.request("send-email", callback=False, id=f"kill-{i}", receiver="a@example.com",
                                      message="x") for i in range(total)))
        wait_until(lambda: len(email_keys(root)) >= 20, what="the stream under way")
        feeder.kill()
        taken = len(email_keys(root))
    assert taken < total, "the feeder was killed in the middle of the stream"
    feeder.start()
    wait_until(lambda: len(email_keys(root)) >= total, timeout=60, what=f"all {total} after the restart")
    keys = email_keys(root)
    assert len(keys) == total and set(keys) == {f"send-email:kill-{i}" for i in range(total)}


def test_broker_restart_in_the_middle_of_a_stream_loses_nothing(device, mqtt_broker, feeders) -> None:
    root = device()
    topic = configure(root, mqtt_broker)["topic"]
    feeder = feeders(root)
    feeder.connected()
    first, more = 1000, 200

    def request(app: AppServer, i: int) -> dict[str, Any]:
        return app.request("send-email", callback=False, id=f"r-{i}", receiver="a@example.com", message="x")

    with AppServer(mqtt_broker) as app:
        app.send(topic, *(request(app, i) for i in range(first)))
    wait_until(lambda: len(email_keys(root)) >= 50, what="the stream under way")
    mqtt_broker.restart()  # mosquitto keeps the session, its queue and in-flight messages on disk
    taken_before = len(email_keys(root))
    feeder.connected(timeout=30)
    with AppServer(mqtt_broker) as app:
        app.send(topic, *(request(app, i) for i in range(first, first + more)))
    wait_until(lambda: len(email_keys(root)) >= first + more, timeout=60, what="every message after the restart")
    keys = email_keys(root)
    assert taken_before < first, "the broker restarted in the middle of the stream"
    assert len(keys) == first + more and set(keys) == {f"send-email:r-{i}" for i in range(first + more)}
    events = feeder_events(root)
    assert any(result == "disconnected" and "lost the link" in cause for result, cause in events), events
    assert [result for result, _ in events].count("connected") >= 2
    feeder.running()


# ---------------------------------------------------------------- connection life


def test_wrong_credentials_are_said_clearly_retried_and_fixed_live(device, mqtt_broker, feeders) -> None:
    root = device()
    topic = configure(root, mqtt_broker, password="not-the-password")["topic"]
    feeder = feeders(root)
    wait_until(lambda: [r for r, _ in feeder_events(root)].count("disconnected") >= 2, what="refusals, retried")
    feeder.running()
    result, cause = feeder_events(root)[0]
    assert result == "disconnected" and "check Username and Password" in cause, cause
    log = feeder.log_text()
    assert "ERROR" in log and "refused the connection" in log and "not-the-password" not in log
    otppi(root, "settings", "set", "feeder_mqtt.password", mqtt_broker.password)
    feeder.connected()
    with AppServer(mqtt_broker) as app:
        app.send(topic, app.request("echo", n=1))
        assert app.answer()["response_code"] == codes.SUCCESS


def test_tls_verifies_the_broker_against_the_ca_file(device, mqtt_broker, feeders) -> None:
    root = device()
    topic = configure(root, mqtt_broker, ssl="true", port=mqtt_broker.tls_port)["topic"]
    feeder = feeders(root)
    wait_until(lambda: feeder_events(root), what="the refused certificate")
    assert "not trusted" in feeder_events(root)[0][1], feeder_events(root)
    assert "set the CA file" in feeder.log_text()
    feeder.running()
    otppi(root, "settings", "set", "feeder_mqtt.ca_file", str(mqtt_broker.ca.ca))
    feeder.connected()
    assert feeder_events(root)[-1] == ("connected", f"{mqtt_broker.host}:{mqtt_broker.tls_port}")
    with AppServer(mqtt_broker) as app:
        app.send(topic, app.request("echo", over="tls"))
        assert app.answer()["data"]["over"] == "tls"


def test_disabled_feeder_idles_then_connects_topic_changes_apply_live(device, mqtt_broker, feeders) -> None:
    root = device()
    settings = configure(root, mqtt_broker, enabled="false")
    client_id, topic = settings["client_id"], settings["topic"]
    feeder = feeders(root)
    for _ in range(2):  # a second watchdog ping: the idle loop has turned for a second at least
        feeder.hear("WATCHDOG=1")
    assert f" as {client_id} " not in broker_log(mqtt_broker), "a disabled feeder opens no connection"
    assert feeder_events(root) == []

    otppi(root, "settings", "set", "feeder_mqtt.enabled", "true")
    feeder.connected()
    assert f" as {client_id} (p2, c0" in broker_log(mqtt_broker), "MQTT 3.1.1, persistent session"
    new_topic = topic + "-new"
    with AppServer(mqtt_broker) as app:
        app.send(topic, app.request("echo", on="old"))
        assert app.answer()["data"]["on"] == "old"
        otppi(root, "settings", "set", "feeder_mqtt.topic", new_topic)
        feeder.connected()
        # Taken in order: an answer from the old topic would come before the new topic's answer.
        app.send(topic, app.request("echo", on="old again"))
        app.send(new_topic, app.request("echo", on="new"))
        assert [a["data"]["on"] for a in app.answers_until(lambda a: a["data"]["on"] == "new")] == ["new"]
    assert f"unsubscribed from {topic}," in feeder.log_text()
    assert ("disconnected", "settings changed") in feeder_events(root)

    otppi(root, "settings", "set", "feeder_mqtt.enabled", "false")
    wait_until(lambda: feeder_events(root)[-1] == ("disconnected", "settings changed")
               and f"Client {client_id} disconnected" in broker_log(mqtt_broker), what="the feeder to let go")
    feeder.running()


# ---------------------------------------------------------------- bad input


def test_bad_input_is_answered_1300_acknowledged_and_never_logged(device, mqtt_broker, feeders) -> None:
    root = device()
    topic = configure(root, mqtt_broker)["topic"]
    feeder = feeders(root)
    feeder.connected()
    with AppServer(mqtt_broker) as app:
        wrong_types = app.request("send-sms", id="bad-1", receiver=6281234, message=["secret-two"])
        huge = app.request("send-sms", id="bad-2", receiver="0812", message="secret-three " + "x" * 70_000)
        app.send(topic, b"secret-one: not JSON at all {", json.dumps(wrong_types).encode(),
                 json.dumps(huge).encode(), b"\xff\xfe secret-four", app.request("echo", n=1))
        answers = app.answers_until(lambda a: a["command"] == "echo")
        assert answers[0]["response_code"] == codes.MALFORMED and "receiver" in answers[0]["message"], answers
        assert all(a["response_code"] == codes.MALFORMED for a in answers[:-1])
        assert answers[1]["response_code"] == codes.MALFORMED and "64 KiB" in answers[1]["message"], answers
        assert answers[-1]["response_code"] == codes.SUCCESS
        log = feeder.log_text()
        assert log.count("refused a message of") == 4, log
        assert "over 64 KiB" in log
        assert not any(secret in log for secret in ("secret-one", "secret-two", "secret-three", "secret-four"))

        # A retained request is taken once, live; the copy the broker replays on each subscribe is skipped.
        retained = app.client.publish(topic, json.dumps(app.request("echo", n="retained")), qos=1, retain=True)
        retained.wait_for_publish(10)
        assert app.answer()["data"]["n"] == "retained"

        # Acknowledged: a restarted feeder is not handed any of them again.
        assert feeder.stop() == 0
        feeder.start()
        feeder.connected()
        app.send(topic, app.request("echo", n=2))
        assert app.answer()["data"]["n"] == 2
        app.client.publish(topic, b"", qos=1, retain=True).wait_for_publish(10)  # the broker forgets it
    log = feeder.log_text()
    assert log.count("refused a message of") == 4 and log.count("skipped a retained message") == 1, log
    assert rows(root, "select count(*) from sms_outbox") == [(0,)]


# ---------------------------------------------------------------- fleet mode


def test_fleet_of_three_shares_1000_messages_each_handled_once(device, mqtt_broker, feeders) -> None:
    group, topic = f"fleet{uuid.uuid4().hex[:6]}", f"otp/fleet-{uuid.uuid4().hex[:6]}"
    roots = [device() for _ in range(3)]
    fleet = []
    for n, root in enumerate(roots):
        configure(root, mqtt_broker, topic=topic, share_group=group, client_id=f"{group}-{n}")
        fleet.append(feeders(root))
    for feeder in fleet:
        feeder.connected()
    total = 1000
    numbers = [f"0813{i:07d}" for i in range(total)]
    with AppServer(mqtt_broker) as app:
        app.send(topic, *(app.request("block-msisdn", callback=False, receiver=number) for number in numbers))

    def handled() -> list[list[str]]:
        return [[m for (m,) in rows(root, "select receiver from event where kind = 'block'")] for root in roots]

    wait_until(lambda: sum(map(len, handled())) >= total, timeout=60, what=f"{total} blocks across the fleet")
    per_device = [sorted(m for (m,) in rows(root, "select msisdn from blocked_number")) for root in roots]
    assert sum(map(len, handled())) == total, "no message handled twice"
    assert sum(map(len, per_device)) == total and len(set().union(*per_device)) == total
    assert set().union(*per_device) == {"62" + n[1:] for n in numbers}
    assert all(per_device), f"every device took a share: {[len(d) for d in per_device]}"
    log = broker_log(mqtt_broker)
    assert all(f" as {group}-{n} (p5, c0" in log for n in range(3)), "MQTT 5, persistent sessions"
