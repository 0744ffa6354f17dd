"""Random and hostile bodies through every feeder and its real broker: only table codes, never a stuck feeder.

Each example publishes a few hostile bodies (tests/hostile.py) and then a good
request; the good request's answer must come back, every answer must carry a
code from the table, and at the end the broker holds nothing unacknowledged
and the feeder never lost its connection over a message. Where the broker can
carry the callback beside the body (a Redis Streams field, AMQP ``reply_to``)
every message is answered, exactly once; elsewhere the structured bodies name
the callback in their JSON.
"""

from __future__ import annotations

import json
import uuid
from typing import Any, Callable

import pytest
import redis
from hypothesis import HealthCheck, Phase, given, settings

from otppi import codes

from ..brokers import have
from ..helpers import otppi, wait_until
from ..hostile import batches
from ..wsbroker_process import DEVICE_PASSWORD, DEVICE_USER, WsBroker
from . import test_amqp, test_mqtt
from .test_redis import StreamReader, pending, provision, redis_settings, rows, unique

pytestmark = pytest.mark.slow

EXAMPLES = 50  # per feeder; with REST's 100, a few hundred in all
TOPIC = "requests"
FOLLOW_TIMEOUT = "1"  # seconds until a queued request is answered 1111: every answer comes soon


def hostile(run: Callable[[list[bytes]], None], callback: str | None = None) -> None:
    """Run *run* over random batches. No shrinking: a message stuck in a real broker fails every later
    example too, so the first failing batch is the one to read (and the broker state is not undone)."""
    settings(max_examples=EXAMPLES, deadline=None, phases=(Phase.explicit, Phase.reuse, Phase.generate),
             suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large])(given(batches(callback))(run))()


def good(callback: str | None = None) -> tuple[bytes, str]:
    marker = uuid.uuid4().hex
    body: dict[str, Any] = {"command": "echo", "data": {"marker": marker}}
    if callback:
        body["callback_topic"] = callback
    return json.dumps(body).encode(), marker


def until_marker(next_answer: Callable[[], dict[str, Any]], marker: str) -> list[dict[str, Any]]:
    """Answers in arrival order up to the good request's; each must carry a code from the table."""
    got: list[dict[str, Any]] = []
    while not got or got[-1].get("data") != {"marker": marker}:
        answer = next_answer()
        assert answer["response_code"] in codes.ALL and answer["message"], answer
        got.append(answer)
    return got


def connections(events: list[tuple[str, str]]) -> int:
    return sum(result == "connected" for result, _ in events)


@pytest.mark.skipif(not have("redis-server"), reason="redis-server is missing")
def test_hostile_bodies_through_redis_streams(device, redis_broker, feeder_processes) -> None:
    topic, callback = unique("hostile"), unique("answers")
    root = provision(device(), redis_settings(redis_broker, topic, "streams", timeout=FOLLOW_TIMEOUT))
    feeder = feeder_processes(root, "redis")
    client = redis.Redis(host=redis_broker.host, port=redis_broker.port, password=redis_broker.password)
    wait_until(lambda: client.exists(topic), what="the consumer group")
    answers = StreamReader(client, callback)
    sent, got = 0, 0

    def run(batch: list[bytes]) -> None:
        nonlocal sent, got
        body, marker = good()
        for item in batch + [body]:
            client.xadd(topic, {"data": item, "callback_topic": callback})
        sent += len(batch) + 1
        got += len(until_marker(answers.next, marker))

    try:
        hostile(run)
        while got < sent:  # the 1111 answers of queued requests come after their timeout
            assert answers.next()["response_code"] in codes.ALL
            got += 1
        wait_until(lambda: pending(client, topic) == 0, what="every entry acknowledged")
        assert client.xlen(callback) == sent, "every entry answered exactly once"
        assert feeder.running() and connections(feeder_events(root, "redis")) == 1, "no message cost the link"
    finally:
        client.close()


def feeder_events(root, source: str) -> list[tuple[str, str]]:
    return rows(root, "select result, cause from event where kind='feeder' and source=? order by id", source)


class ReplyQueue:
    """The app server's reply queue, read one answer at a time."""

    def __init__(self, client: test_amqp.Client):
        self.client, self.name = client, client.queue()

    def next(self) -> dict[str, Any]:
        [(_, answer)] = self.client.answers(self.name, 1)
        return answer


@pytest.mark.skipif(not have("rabbitmq-server"), reason="rabbitmq-server is missing")
def test_hostile_bodies_through_rabbitmq(device, amqp_broker, feeder_processes) -> None:
    root = device()
    topic = test_amqp.configure(root, amqp_broker, timeout=FOLLOW_TIMEOUT)
    feeder = feeder_processes(root, "amqp")
    wait_until(lambda: test_amqp.connections(root) == 1, what="the feeder connected")
    with test_amqp.Client(amqp_broker) as client:
        answers = ReplyQueue(client)
        sent, got = 0, 0

        def run(batch: list[bytes]) -> None:
            nonlocal sent, got
            body, marker = good()
            for item in batch + [body]:
                client.send(topic, item, reply_to=answers.name)
            sent += len(batch) + 1
            got += len(until_marker(answers.next, marker))

        hostile(run)
        while got < sent:  # the 1111 answers of queued requests come after their timeout
            assert answers.next()["response_code"] in codes.ALL
            got += 1
        wait_until(lambda: client.ready(topic) == 0, what="the queue empty")
        assert client.ready(answers.name) == 0, "every message answered exactly once"
    assert feeder.running() and test_amqp.connections(root) == 1, "no message cost the connection"


@pytest.mark.skipif(not have("mosquitto"), reason="mosquitto is missing")
def test_hostile_bodies_through_mqtt(device, mqtt_broker, feeder_processes) -> None:
    root = device()
    topic = test_mqtt.configure(root, mqtt_broker, timeout=FOLLOW_TIMEOUT)["topic"]
    feeder = feeder_processes(root, "mqtt")
    feeder.connected()
    with test_mqtt.AppServer(mqtt_broker) as app:

        def run(batch: list[bytes]) -> None:
            body, marker = good(app.callback)
            app.send(topic, *batch, body)
            until_marker(app.answer, marker)

        hostile(run, app.callback)
    assert feeder.running() and connections(test_mqtt.feeder_events(root)) == 1, "no message cost the session"


def test_hostile_bodies_through_websocket(device, feeder_processes) -> None:
    root = device()
    broker = WsBroker(root.parent / "wsb", args=("--max-size", str(1 << 20))).start()  # 64 KiB bodies pass it
    try:
        for key, value in {"enabled": "true", "host": broker.host, "port": broker.port, "path": broker.path,
                           "username": DEVICE_USER, "allow_plain_login": "true",
                           "password": DEVICE_PASSWORD, "topic": TOPIC,
                           "timeout": FOLLOW_TIMEOUT}.items():
            otppi(root, "settings", "set", f"feeder_ws.{key}", str(value))
        feeder = feeder_processes(root, "ws")
        wait_until(lambda: connections(feeder_events(root, "ws")) == 1, what="the feeder connected")
        # Answers to the subscribed topic go out on the device's own link; the broker passes them to
        # every other client of the topic, here the app server (never back to the sender).
        with broker.client(TOPIC) as app:

            def next_answer() -> dict[str, Any]:
                return json.loads(app.recv(timeout=30))

            def run(batch: list[bytes]) -> None:
                body, marker = good(TOPIC)
                for item in batch + [body]:
                    try:
                        app.send(item.decode())  # a text frame where the bytes allow it
                    except UnicodeDecodeError:
                        app.send(item)
                until_marker(next_answer, marker)

            hostile(run, TOPIC)
        assert feeder.running() and connections(feeder_events(root, "ws")) == 1, "no message cost the link"
    finally:
        broker.stop()
