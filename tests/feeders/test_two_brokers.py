"""The same request arriving through two brokers is sent once (the spec's Scenario 2 warns the seed sent it twice)."""

from __future__ import annotations

import json
import subprocess
import sys
import uuid

import paho.mqtt.client as mqtt
import pika

from ..helpers import env_for, wait_until


def test_one_id_through_rabbitmq_and_mqtt_is_sent_once(gateway_factory, amqp_broker, mqtt_broker) -> None:
    gw = gateway_factory(count=1)
    gw.add_modem("m", 0, "--default")
    tag = uuid.uuid4().hex[:8]
    for name, broker, extra in (("amqp", amqp_broker, {}), ("mqtt", mqtt_broker, {"client_id": f"two-{tag}"})):
        values = {"enabled": "true", "allow_plain_login": "true", "host": broker.host, "port": broker.port, "username": broker.user,
                  "password": broker.password, "topic": f"two-{tag}", **extra}
        for key, value in values.items():
            gw.cli("settings", "set", f"feeder_{name}.{key}", str(value))
    gw.start_modem(wait_for=["m"])
    feeders = [subprocess.Popen([sys.executable, "-m", f"otppi.feeders.{name}"], env=env_for(gw.root),
                                stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL) for name in ("amqp", "mqtt")]
    try:
        wait_until(lambda: gw.rows("select count(distinct source) from event where kind = 'feeder' "
                                   "and result = 'connected'") == [(2,)], timeout=60, what="both feeders connected")
        def body(callback: str) -> bytes:
            return json.dumps({"command": "send-sms", "callback_topic": callback,
                               "data": {"id": f"dup-{tag}", "receiver": "0812", "message": "only once"}}).encode()

        answers: list[dict] = []
        client = mqtt.Client(mqtt.CallbackAPIVersion.VERSION2, client_id=f"app-{tag}")
        client.username_pw_set(mqtt_broker.user, mqtt_broker.password)
        client.on_message = lambda c, u, message: answers.append(json.loads(message.payload))
        client.connect(mqtt_broker.host, mqtt_broker.port)
        client.loop_start()
        client.subscribe(f"answers-{tag}", qos=1)
        conn = pika.BlockingConnection(pika.ConnectionParameters(
            amqp_broker.host, amqp_broker.port, credentials=pika.PlainCredentials(amqp_broker.user,
                                                                                  amqp_broker.password)))
        channel = conn.channel()
        channel.queue_declare(f"answers-{tag}", durable=True)
        channel.basic_publish("", f"two-{tag}", body(f"answers-{tag}"), pika.BasicProperties(delivery_mode=2))
        client.publish(f"two-{tag}", body(f"answers-{tag}"), qos=1).wait_for_publish(10)

        def amqp_answer():
            method, _, payload = channel.basic_get(f"answers-{tag}", auto_ack=True)
            return json.loads(payload) if method else None

        via_amqp = wait_until(amqp_answer, what="the RabbitMQ feeder's answer")
        wait_until(lambda: answers, what="the MQTT feeder's answer")
        client.loop_stop()
        client.disconnect()
        conn.close()
        # Both feeders took the request and both answered it; the store kept one row, the modem sent it once.
        assert via_amqp["response_code"] == answers[0]["response_code"] == "000", (via_amqp, answers)
        assert gw.rows("select count(*) from sms_outbox") == [(1,)]
        assert [m.text for m in gw.sent(0)] == ["only once"]
    finally:
        for proc in feeders:
            proc.terminate()
            assert proc.wait(20) == 0
