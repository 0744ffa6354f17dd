"""Poison messages through the real brokers: nothing stops a feeder for good.

A request the contract cannot take (a lone surrogate) is answered 1300 and
acknowledged. A message that kills the feeder process each time it is
handled comes back from the broker after every restart; after
``MAX_DELIVERIES`` deliveries it is dead-lettered: acknowledged without being
handled, answered 1102 on its callback, recorded as an event. Each time the
request behind it is handled.

The killing message is a ``request-ussd``: the feeder asks the modem
component over its control socket, and here that socket belongs to a
modem component that takes the request and never answers, so the test knows
the feeder is in the middle of the message when it kills it (``kill -9``).
"""

from __future__ import annotations

import json
import queue
import socket
import threading
from pathlib import Path
from typing import Any

import pytest
import redis

from otppi import codes
from otppi.feeders.intake import MAX_DELIVERIES
from otppi.paths import Paths

from ..brokers import have
from ..helpers import otppi, wait_until
from . import test_amqp, test_mqtt
from .test_redis import StreamReader, pending, provision, redis_settings, rows, unique

pytestmark = pytest.mark.slow

USSD = {"modem": "m", "code": "*123#"}


class SilentModemComponent:
    """The modem component's control socket, wedged: it takes each request and never answers."""

    def __init__(self, root: Path):
        path = Paths(root).runtime_dir / "modem.sock"
        path.parent.mkdir(parents=True, exist_ok=True)
        self.sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        self.sock.bind(str(path))
        self.sock.listen()
        self.calls: queue.Queue[socket.socket] = queue.Queue()
        threading.Thread(target=self._accept, daemon=True).start()

    def _accept(self) -> None:
        while True:
            try:
                conn, _ = self.sock.accept()
            except OSError:
                return
            self.calls.put(conn)

    def called(self, timeout: float = 30) -> None:
        """Block until a feeder is inside a request (its USSD call reached this socket)."""
        try:
            self.calls.get(timeout=timeout).close()
        except queue.Empty:
            raise AssertionError("the feeder never reached the modem component") from None

    def close(self) -> None:
        self.sock.close()


@pytest.fixture
def wedged(device):
    """A device with a modem named m and a wedged modem component."""
    root = device()
    otppi(root, "modem", "add", "m", "--port", "/dev/null")
    modem = SilentModemComponent(root)
    yield root, modem
    modem.close()


def crash_loop(root: Path, modem: SilentModemComponent, feeder_processes, kind: str) -> None:
    """Kill the feeder in the middle of the first message, MAX_DELIVERIES times; then start it for good."""
    otppi(root, "settings", "set", f"feeder_{kind}.allow_ussd", "true")  # brokers may not use USSD by default
    for attempt in range(MAX_DELIVERIES):
        feeder = feeder_processes(root, kind, f"feeder-{kind}-{attempt}")
        modem.called()
        feeder.kill()
    feeder_processes(root, kind, f"feeder-{kind}-last")


def dead_lettered(root: Path, kind: str) -> list[str]:
    return [cause for (cause,) in rows(root, "select cause from event where kind='feeder' and source=? "
                                             "and result='dead-lettered'", kind)]


def assert_dead_letter(answer: dict[str, Any]) -> None:
    assert answer["command"] == "request-ussd" and answer["response_code"] == codes.FAILED, answer
    assert f"delivered {MAX_DELIVERIES + 1} times" in answer["message"] and "dead-lettered" in answer["message"]


# ---------------------------------------------------------------- Redis Streams


@pytest.fixture
def redis_client(redis_broker):
    client = redis.Redis(host=redis_broker.host, port=redis_broker.port, password=redis_broker.password)
    yield client
    client.close()


def stream_request(command: str, callback: str, **data: Any) -> bytes:
    return json.dumps({"command": command, "callback_topic": callback, "data": data}).encode()


@pytest.mark.skipif(not have("redis-server"), reason="redis-server is missing")
def test_redis_a_lone_surrogate_entry_is_answered_1300_and_the_stream_goes_on(device, redis_broker, redis_client,
                                                                            feeder_processes) -> None:
    topic, callback = unique("sms"), unique("answers")
    root = provision(device(), redis_settings(redis_broker, topic, "streams"))
    feeder_processes(root, "redis")
    wait_until(lambda: redis_client.exists(topic), what="the consumer group")
    answers = StreamReader(redis_client, callback)
    poison = b'{"command": "send-sms", "callback_topic": "%s", "data": {"receiver": "0812", "message": "\\ud800"}}'
    redis_client.xadd(topic, {"data": poison % callback.encode()})
    redis_client.xadd(topic, {"data": stream_request("echo", callback, behind="the poison")})
    refused = answers.next()
    assert refused["response_code"] == codes.MALFORMED and refused["message"].startswith("data.message "), refused
    assert answers.next()["data"] == {"behind": "the poison"}
    wait_until(lambda: pending(redis_client, topic) == 0, what="both entries acknowledged")


@pytest.mark.skipif(not have("redis-server"), reason="redis-server is missing")
def test_redis_an_entry_that_kills_the_feeder_is_dead_lettered_after_a_few_deliveries(wedged, redis_broker,
                                                                                     redis_client,
                                                                                     feeder_processes) -> None:
    root, modem = wedged
    topic, callback = unique("sms"), unique("answers")
    provision(root, redis_settings(redis_broker, topic, "streams"))
    redis_client.xgroup_create(topic, "otppi", id="$", mkstream=True)
    poison_id = redis_client.xadd(topic, {"data": stream_request("request-ussd", callback, **USSD)})
    redis_client.xadd(topic, {"data": stream_request("echo", callback, behind="the poison")})
    answers = StreamReader(redis_client, callback)

    crash_loop(root, modem, feeder_processes, "redis")
    assert_dead_letter(answers.next())
    assert answers.next()["data"] == {"behind": "the poison"}, "the entry behind it was not dead-lettered"
    wait_until(lambda: pending(redis_client, topic) == 0, what="both entries acknowledged")
    assert modem.calls.empty(), "the dead letter was not handled again"
    [cause] = dead_lettered(root, "redis")
    assert poison_id.decode() in cause and "*123#" not in cause
    assert redis_client.xrange(topic, poison_id, poison_id), "the entry stays in the stream for the operator"


# ---------------------------------------------------------------- RabbitMQ


@pytest.mark.skipif(not have("rabbitmq-server"), reason="rabbitmq-server is missing")
def test_amqp_a_message_that_kills_the_feeder_is_dead_lettered_after_a_few_deliveries(wedged, amqp_broker,
                                                                                    feeder_processes) -> None:
    root, modem = wedged
    topic = test_amqp.configure(root, amqp_broker)
    with test_amqp.Client(amqp_broker) as client:
        client.queue(topic)
        answers = client.queue()
        client.send(topic, test_amqp.request("request-ussd", answers, **USSD))
        client.send(topic, test_amqp.request("echo", answers, behind="the poison"))
        crash_loop(root, modem, feeder_processes, "amqp")
        (_, dead), (_, behind) = client.answers(answers, 2)
        assert_dead_letter(dead)
        assert behind["data"]["behind"] == "the poison"
        wait_until(lambda: client.ready(topic) == 0, what="the queue empty")
    assert modem.calls.empty()
    assert len(dead_lettered(root, "amqp")) == 1


# ---------------------------------------------------------------- MQTT


@pytest.mark.skipif(not have("mosquitto"), reason="mosquitto is missing")
def test_mqtt_a_message_that_kills_the_feeder_is_dead_lettered_after_a_few_deliveries(wedged, mqtt_broker,
                                                                                    feeder_processes) -> None:
    root, modem = wedged
    settings = test_mqtt.configure(root, mqtt_broker)
    with test_mqtt.AppServer(mqtt_broker) as app:
        # The persistent session exists before the requests are published (a first connect makes it).
        first = feeder_processes(root, "mqtt", "feeder-mqtt-session")
        wait_until(lambda: ("connected", f"{mqtt_broker.host}:{mqtt_broker.port}") in test_mqtt.feeder_events(root),
                   what="the session")
        assert first.stop() == 0
        app.send(settings["topic"], app.request("request-ussd", **USSD), app.request("echo", behind="the poison"))
        crash_loop(root, modem, feeder_processes, "mqtt")
        assert_dead_letter(app.answer())
        assert app.answer()["data"]["behind"] == "the poison"
    assert modem.calls.empty()
    assert len(dead_lettered(root, "mqtt")) == 1
