"""The RabbitMQ feeder end to end: its own process, a real rabbitmq-server, the real store and modem component."""

from __future__ import annotations

import json
import sqlite3
import uuid
from pathlib import Path
from typing import Any

import pika
import pytest

from otppi import codes
from otppi.paths import Paths

from ..brokers import have
from ..helpers import otppi, wait_until

pytestmark = [
    pytest.mark.slow,
    pytest.mark.skipif(not have("rabbitmq-server"), reason="rabbitmq-server is missing: ./build.sh test installs it"),
]

CONNECTION_NAME = "otppi feeder-amqp"


# ---------------------------------------------------------------- the device side


def rows(root: Path, sql: str, *args: Any) -> list[tuple]:
    con = sqlite3.connect(Paths(root).database, timeout=15)
    try:
        return con.execute(sql, args).fetchall()
    finally:
        con.close()


def feeder_events(root: Path) -> list[tuple[str, str]]:
    return rows(root, "select result, cause from event where kind = 'feeder' and source = 'amqp' order by id")


def connections(root: Path) -> int:
    return sum(result == "connected" for result, _ in feeder_events(root))


def email_keys(root: Path) -> list[str]:
    return [key for (key,) in rows(root, "select message_key from email_outbox")]


def configure(root: Path, broker, **overrides: Any) -> str:
    """Settings through the real CLI, as an operator would; returns the topic (a queue of this test's own)."""
    values = {"enabled": "true", "allow_plain_login": "true", "host": broker.host, "port": broker.port, "username": broker.user,
              "password": broker.password, "topic": f"otp-{uuid.uuid4().hex[:10]}", "reconnect_delay": "0.2",
              "timeout": "5"}
    values.update(overrides)
    values["password"] = values.pop("password")  # last: a new host, port or TLS clears it
    for key, value in values.items():
        otppi(root, "settings", "set", f"feeder_amqp.{key}", str(value))
    return values["topic"]


@pytest.fixture
def feeders(feeder_processes):
    return lambda root, name="feeder-amqp": feeder_processes(root, "amqp", name)


# ---------------------------------------------------------------- the app server side


class Client:
    """The app server: publishes persistent requests with confirms, reads answers from its own queues."""

    def __init__(self, broker):
        credentials = pika.PlainCredentials(broker.user, broker.password)
        self.connection = pika.BlockingConnection(pika.ConnectionParameters(broker.host, broker.port,
                                                                            credentials=credentials))
        self.channel = self.connection.channel()
        self.channel.confirm_delivery()

    def __enter__(self) -> "Client":
        return self

    def __exit__(self, *exc: object) -> None:
        if self.connection.is_open:
            self.connection.close()

    def queue(self, name: str | None = None) -> str:
        name = name or f"answers-{uuid.uuid4().hex[:10]}"
        self.channel.queue_declare(name, durable=True)
        return name

    def send(self, queue: str, request: dict[str, Any] | bytes, **properties: Any) -> None:
        body = request if isinstance(request, bytes) else json.dumps(request).encode()
        self.channel.basic_publish("", queue, body, pika.BasicProperties(delivery_mode=2, **properties))

    def answers(self, queue: str, count: int, timeout: float = 20) -> list[tuple[pika.BasicProperties, dict]]:
        got: list[tuple[pika.BasicProperties, dict]] = []

        def have_all() -> bool:
            while len(got) < count:
                method, properties, body = self.channel.basic_get(queue, auto_ack=True)
                if method is None:
                    return False
                got.append((properties, json.loads(body)))
            return True

        wait_until(have_all, timeout=timeout, what=f"{count} answers on {queue} (have {len(got)})")
        return got

    def ready(self, queue: str) -> int:
        return self.channel.queue_declare(queue, passive=True).method.message_count


def request(command: str, callback: str | None = None, **data: Any) -> dict[str, Any]:
    body: dict[str, Any] = {"command": command, "data": {"date_time": 1629685778, **data}}
    if callback:
        body["callback_topic"] = callback
    return body


def feeder_connections(broker) -> int:
    return broker.ctl("list_connections", "client_properties", "--quiet").count(CONNECTION_NAME)


# ---------------------------------------------------------------- the tests


def test_every_command_end_to_end_with_callbacks_and_reply_to(amqp_broker, gateway_factory, feeders) -> None:
    gw = gateway_factory(count=1)
    gw.add_modem("m", 0, "--default")
    gw.start_modem(wait_for=["m"])
    topic = configure(gw.root, amqp_broker, timeout="20")
    feeder = feeders(gw.root)
    wait_until(lambda: connections(gw.root) == 1, what="the feeder to connect")
    with Client(amqp_broker) as client:
        answers = client.queue()
        client.send(topic, request("send-sms", answers, id="sms-1", receiver="08126666666", message="Halo dari MQ"))
        [(_, sms)] = client.answers(answers, 1)
        assert sms["command"] == "send-sms" and sms["response_code"] == codes.SUCCESS, sms
        assert sms["data"]["id"] == "sms-1"
        assert [(m.number, m.text) for m in gw.sent(0)] == [("628126666666", "Halo dari MQ")]

        client.send(topic, request("create-otp", answers, receiver="08127777777", reference="trx-9",
                                   message="Kode OTP %s", param1="100000"))
        [(_, created)] = client.answers(answers, 1)
        assert created["response_code"] == codes.SUCCESS, created
        code = gw.sent(0)[-1].text.rsplit(" ", 1)[1]
        check = {"receiver": "08127777777", "reference": "trx-9", "param1": "100000"}
        client.send(topic, request("validate-otp", answers, otp=code, **check))
        client.send(topic, request("validate-otp", answers, otp=code, **check))  # single use
        assert [a["response_code"] for _, a in client.answers(answers, 2)] == [codes.SUCCESS, codes.OTP_INVALID]

        client.send(topic, request("block-msisdn", answers, receiver="08125555555"))
        client.send(topic, request("send-sms", answers, id="sms-2", receiver="08125555555", message="no"))
        client.send(topic, request("unblock-msisdn", answers, receiver="08125555555"))
        client.send(topic, request("send-email", id="mail-1", receiver="someone@domain.tld", message="Your OTP"))
        got = [a["response_code"] for _, a in client.answers(answers, 3)]
        assert got == [codes.SUCCESS, codes.BLOCKED, codes.SUCCESS]
        # Queued for a mailer this gateway does not run (the fleet test reads send-email's 1111 answers).
        wait_until(lambda: gw.rows("select message_key, state from email_outbox") == [("send-email:mail-1", "queued")],
                   what="the email in the outbox")

        # RabbitMQ's own request/reply: reply_to and correlation_id, no callback_topic in the body.
        rpc = client.queue()
        client.send(topic, request("get-modem-list"), reply_to=rpc, correlation_id="corr-42")
        [(properties, listing)] = client.answers(rpc, 1)
        assert properties.correlation_id == "corr-42" and properties.delivery_mode == 2
        assert listing["response_code"] == codes.SUCCESS and listing["data"]["modems"][0]["name"] == "m"
        assert client.ready(topic) == 0
    assert feeder.running()
    assert len(gw.sent(0)) == 2, "the blocked receiver got nothing"
    assert "Halo dari MQ" not in feeder.log_text() and "Kode OTP" not in feeder.log_text()


def test_nothing_is_lost_across_a_broker_restart_mid_stream(amqp_broker, device, feeders) -> None:
    root = device()
    topic = configure(root, amqp_broker)
    feeder = feeders(root)
    wait_until(lambda: connections(root) == 1, what="the feeder to connect")
    ids = [f"restart-{i}" for i in range(600)]
    feeder.freeze()  # the whole stream waits in the queue
    with Client(amqp_broker) as client:
        for i in ids:
            client.send(topic, request("send-email", id=i, receiver="someone@domain.tld", message="m"))
    feeder.thaw()
    wait_until(lambda: len(email_keys(root)) >= 10, what="the stream to start")
    # Frozen mid-stream with deliveries in hand, unacknowledged: the broker restarts under it.
    feeder.freeze()
    try:
        assert len(email_keys(root)) < len(ids), "the restart must come in the middle of the stream"
        amqp_broker.restart()
    finally:
        feeder.thaw()
    wait_until(lambda: len(email_keys(root)) == len(ids), timeout=40, what="every request after the restart")
    assert sorted(email_keys(root)) == sorted(f"send-email:{i}" for i in ids)  # each once (the key is unique)
    wait_until(lambda: connections(root) >= 2, what="the feeder to reconnect")
    with Client(amqp_broker) as client:
        wait_until(lambda: client.ready(topic) == 0, what="the queue to drain")
    assert feeder.running()


def test_wrong_password_is_said_clearly_and_fixed_live(amqp_broker, device, feeders) -> None:
    root = device()
    topic = configure(root, amqp_broker, password="not-the-password")
    feeder = feeders(root)
    wait_until(lambda: "refused the username or password" in feeder.log_text(), what="the error in the log")
    wait_until(lambda: len(feeder_events(root)) >= 2, what="events of the failed attempts")
    assert {result for result, _ in feeder_events(root)} == {"disconnected"}
    assert "refused the username or password" in feeder_events(root)[0][1]
    assert "not-the-password" not in feeder.log_text()
    assert feeder.running()
    otppi(root, "settings", "set", "feeder_amqp.password", amqp_broker.password)
    wait_until(lambda: connections(root) == 1, timeout=20, what="the feeder to connect with the fixed password")
    with Client(amqp_broker) as client:
        answers = client.queue()
        client.send(topic, request("echo", answers, hello="there"))
        assert client.answers(answers, 1)[0][1]["data"]["hello"] == "there"


def test_tls_verifies_the_broker_against_the_ca_file(amqp_broker, device, feeders) -> None:
    root = device()
    topic = configure(root, amqp_broker, ssl="true", port=amqp_broker.tls_port, ca_file=amqp_broker.ca.ca)
    feeders(root)
    wait_until(lambda: connections(root) == 1, what="the feeder to connect over TLS")
    with Client(amqp_broker) as client:
        answers = client.queue()
        client.send(topic, request("echo", answers, over="tls"))
        assert client.answers(answers, 1)[0][1]["data"] == {"date_time": 1629685778, "over": "tls"}

    untrusting = device()
    configure(untrusting, amqp_broker, ssl="true", port=amqp_broker.tls_port, ca_file="")
    feeder = feeders(untrusting, "untrusting")
    [(result, cause)] = wait_until(lambda: feeder_events(untrusting), what="the failed attempt's event")[:1]
    assert result == "disconnected" and "certificate did not verify" in cause
    assert "certificate did not verify" in feeder.log_text()
    assert connections(untrusting) == 0 and feeder.running()


def test_fleet_of_three_devices_shares_one_queue_each_request_once(amqp_broker, device, feeders) -> None:
    roots = [device() for _ in range(3)]
    topic = configure(roots[0], amqp_broker, timeout="0.5")
    for root in roots[1:]:
        configure(root, amqp_broker, topic=topic, timeout="0.5")
    for n, root in enumerate(roots):
        feeders(root, f"feeder-{n}")
    wait_until(lambda: all(connections(root) == 1 for root in roots), what="three consumers")
    ids = [f"fleet-{i}" for i in range(1000)]
    with Client(amqp_broker) as client:
        answers = client.queue()
        for i in ids:
            client.send(topic, request("send-email", answers, id=i, receiver="someone@domain.tld", message="m"))
        wait_until(lambda: sum(len(email_keys(root)) for root in roots) == len(ids), timeout=40,
                   what="every request in some device's outbox")
        # One answer per request: no device handled a request another one had.
        got = client.answers(answers, len(ids), timeout=30)
        assert sorted(a["data"]["id"] for _, a in got) == sorted(ids)
        assert client.ready(answers) == 0 and client.ready(topic) == 0
    per_device = [email_keys(root) for root in roots]
    everywhere = [key for keys in per_device for key in keys]
    assert sorted(everywhere) == sorted(f"send-email:{i}" for i in ids), "each request in exactly one outbox"
    assert all(len(keys) > 100 for keys in per_device), [len(keys) for keys in per_device]


def test_bad_input_is_answered_1300_acknowledged_and_never_logged(amqp_broker, device, feeders) -> None:
    root = device()
    topic = configure(root, amqp_broker)
    feeder = feeders(root)
    wait_until(lambda: connections(root) == 1, what="the feeder to connect")
    secret = "SECRET-BODY-7731"
    huge = {"command": "send-sms", "data": {"receiver": "0812", "message": secret * 4500}}  # 70 KB
    with Client(amqp_broker) as client:
        answers = client.queue()
        client.send(topic, f"this is not json {secret}".encode(), reply_to=answers, correlation_id="c1")
        client.send(topic, {"command": "send-sms", "callback_topic": answers,
                            "data": {"receiver": 8126666666, "message": secret}})
        client.send(topic, huge, reply_to=answers)
        client.send(topic, {**huge, "callback_topic": answers})
        client.send(topic, b"\xff\xfe" + secret.encode())  # no callback at all: acknowledged all the same
        client.send(topic, {"command": "launch-missiles", "callback_topic": answers, "data": {}})
        got = client.answers(answers, 5)
        assert [a["response_code"] for _, a in got] == [codes.MALFORMED] * 5
        assert got[0][0].correlation_id == "c1"
        assert "data.receiver must be a string" in got[1][1]["message"]
        assert "over 64 KiB" in got[2][1]["message"] and "over 64 KiB" in got[3][1]["message"]
        assert "launch-missiles" in got[4][1]["message"]
        client.send(topic, request("echo", answers, still="alive"))
        assert client.answers(answers, 1)[0][1]["data"]["still"] == "alive"
    assert feeder.running()
    queues = amqp_broker.ctl("list_queues", "name", "messages", "messages_unacknowledged", "--quiet")
    assert f"{topic}\t0\t0" in queues, queues
    assert secret not in feeder.log_text()


def test_disabled_feeder_idles_then_connects_when_enabled_live(amqp_broker, device, feeders) -> None:
    root = device()
    topic = configure(root, amqp_broker, enabled="false")
    feeder = feeders(root)
    assert "STATUS=idle" in feeder.status
    assert feeder_connections(amqp_broker) == 0 and feeder_events(root) == []
    otppi(root, "settings", "set", "feeder_amqp.enabled", "true")
    wait_until(lambda: connections(root) == 1, timeout=20, what="the enabled feeder to connect")
    assert feeder_connections(amqp_broker) == 1
    with Client(amqp_broker) as client:
        answers = client.queue()
        client.send(topic, request("echo", answers, now="enabled"))
        assert client.answers(answers, 1)[0][1]["data"]["now"] == "enabled"
    otppi(root, "settings", "set", "feeder_amqp.enabled", "false")
    wait_until(lambda: feeder_events(root)[-1] == ("disconnected", "settings changed"), what="the feeder to let go")
    wait_until(lambda: feeder_connections(amqp_broker) == 0, what="no connection to the broker")
    assert feeder.running()


def test_a_new_topic_applies_live_even_on_a_queue_with_arguments_of_its_own(amqp_broker, device, feeders) -> None:
    root = device()
    old = configure(root, amqp_broker)
    feeder = feeders(root)
    wait_until(lambda: connections(root) == 1, what="the feeder to connect")
    new = f"otp-{uuid.uuid4().hex[:10]}"
    with Client(amqp_broker) as client:
        # An operator's own queue: our plain durable declaration would not match it, so it is used as it is.
        client.channel.queue_declare(new, durable=True, arguments={"x-max-length": 10_000})
        otppi(root, "settings", "set", "feeder_amqp.topic", new)
        wait_until(lambda: connections(root) == 2, what="the feeder to reconnect on the new topic")
        answers = client.queue()
        client.send(old, request("echo", answers, on="old"))
        client.send(new, request("echo", answers, on="new"))
        assert [a["data"]["on"] for _, a in client.answers(answers, 1)] == ["new"]
        assert client.ready(old) == 1, "the old queue is no longer consumed"
    assert feeder_events(root)[1] == ("disconnected", "settings changed")
    assert f"queue {new!r} exists with arguments of its own" in feeder.log_text()
    assert feeder.running()
