"""The intake every feeder shares: answers on callbacks, final outcomes, bad input."""

from __future__ import annotations

import json
import threading

from otppi import codes, keys
from otppi.feeders.intake import Courier, Intake, Reply
from otppi.handler import Context, Handler
from otppi.paths import Paths
from otppi.store import outbox
from otppi.store.models import SmsOutbox


class Published:
    """What the feeder published, by topic (the broker side of the fake is just a list)."""

    def __init__(self) -> None:
        self.items: list[tuple[str, dict, dict]] = []
        self.arrived = threading.Condition()

    def __call__(self, topic: str, body: bytes, extra: dict) -> None:
        with self.arrived:
            self.items.append((topic, json.loads(body), extra))
            self.arrived.notify_all()

    def wait(self, count: int, timeout: float = 10.0) -> list[tuple[str, dict, dict]]:
        with self.arrived:
            assert self.arrived.wait_for(lambda: len(self.items) >= count, timeout), self.items
            return list(self.items)


def make(paths: Paths, timeout: float = 30.0):
    handler = Handler(Context(paths=paths, otp_key=keys.otp_key(paths)))
    published = Published()
    courier = Courier(paths, handler, published, "test")
    return Intake(handler, "amqp:test", courier, timeout), courier, published


def test_answer_goes_to_the_callback(paths: Paths) -> None:
    intake, courier, published = make(paths)
    try:
        answer = intake.take(b'{"command": "echo", "callback_topic": "replies", "data": {"x": 1}}')
        assert answer["response_code"] == codes.SUCCESS
        assert published.wait(1) == [("replies", answer, {})]
    finally:
        courier.close()


def test_reply_to_wins_and_carries_its_extras(paths: Paths) -> None:
    intake, courier, published = make(paths)
    try:
        intake.take(b'{"command": "echo", "callback_topic": "ignored"}', Reply("amq.rabbitmq.reply-to",
                                                                                (("correlation_id", "c1"),)))
        topic, _, extra = published.wait(1)[0]
        assert (topic, extra) == ("amq.rabbitmq.reply-to", {"correlation_id": "c1"})
    finally:
        courier.close()


def test_bad_input_is_answered_when_it_names_a_callback(paths: Paths) -> None:
    intake, courier, published = make(paths)
    try:
        assert intake.take(b"not json")["response_code"] == codes.MALFORMED  # no callback: nothing published
        answer = intake.take(b'{"command": "send-sms", "callback_topic": "cb", "data": {"receiver": 5}}')
        assert answer["response_code"] == codes.MALFORMED and "data.receiver" in answer["message"]
        assert published.wait(1) == [("cb", answer, {})]
        assert SmsOutbox.select().count() == 0
    finally:
        courier.close()


def test_a_queued_sms_is_answered_with_its_final_outcome(paths: Paths) -> None:
    intake, courier, published = make(paths)
    try:
        body = {"command": "send-sms", "callback_topic": "cb", "data": {"id": "s1", "receiver": "0812", "message": "m"}}
        assert intake.take(json.dumps(body).encode())["response_code"] == codes.QUEUED
        row = SmsOutbox.get()
        assert courier.waiting == 1 and published.items == []
        assert outbox.claim(SmsOutbox, row.id)
        outbox.finish(paths, SmsOutbox, row.id, "sent", modem="m1")
        topic, answer, _ = published.wait(1)[0]
        assert (topic, answer["response_code"], answer["data"]["id"]) == ("cb", codes.SUCCESS, "s1")
    finally:
        courier.close()


def test_an_outcome_not_known_in_time_is_answered_1111(paths: Paths) -> None:
    intake, courier, published = make(paths, timeout=0.2)
    try:
        body = {"command": "send-sms", "callback_topic": "cb", "data": {"receiver": "0812", "message": "m"}}
        intake.take(json.dumps(body).encode())
        assert published.wait(1)[0][1]["response_code"] == codes.QUEUED
        assert SmsOutbox.get().state == "queued", "the message itself is not given up"
    finally:
        courier.close()


def test_an_oversize_request_still_hears_1300_on_its_callback(paths: Paths) -> None:
    intake, courier, published = make(paths)
    try:
        body = json.dumps({"command": "echo", "callback_topic": "cb", "data": {"x": "a" * 70_000}}).encode()
        assert intake.take(body)["response_code"] == codes.MALFORMED
        topic, answer, _ = published.wait(1)[0]
        assert topic == "cb" and "64 KiB" in answer["message"]
    finally:
        courier.close()
