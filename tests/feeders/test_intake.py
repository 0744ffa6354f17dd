"""The intake every feeder shares: answers on callbacks, final outcomes, bad input."""

from __future__ import annotations

import contextlib
import json
import sqlite3
import threading

from otppi import codes, doorbell, keys
from otppi.feeders.deliveries import DeliveryLedger
from otppi.feeders.intake import MAX_DELIVERIES, UNKEPT, Courier, Delivery, Intake, Reply, StoreUnavailable
from otppi.handler import Context, Handler
from otppi.paths import Paths
from otppi.store import outbox, settings
from otppi.store.db import db
from otppi.store.models import Event, Modem, SmsOutbox

from ..helpers import wait_until


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


# ---------------------------------------------------------------- poison messages


@contextlib.contextmanager
def renamed(table: str):
    """Take *table* away from the store (another connection renames it) until the block ends: every
    statement on it fails with sqlite's own OperationalError, as a broken or locked store's would."""
    con = sqlite3.connect(db.database, timeout=15, isolation_level=None)
    try:
        con.execute(f"alter table {table} rename to {table}_away")
        yield
    finally:
        con.execute(f"alter table {table}_away rename to {table}")
        con.close()


def test_a_lone_surrogate_is_answered_1300_on_the_callback_and_nothing_is_queued(paths: Paths) -> None:
    intake, courier, published = make(paths)
    try:
        for data in ({"receiver": "0812", "message": "hi \ud800"}, {"receiver": "0812\udfff", "message": "m"},
                     {"receiver": "0812", "message": "m", "id": "\ud800"}):
            body = json.dumps({"command": "send-sms", "callback_topic": "cb", "data": data}).encode()
            answer = intake.take(body)
            assert answer["response_code"] == codes.MALFORMED and "surrogate" in answer["message"], answer
        otp = json.dumps({"command": "create-otp", "callback_topic": "cb",
                          "data": {"receiver": "0812", "reference": "r", "param2": "\udc00"}}).encode()
        assert intake.take(otp)["message"].startswith("data.param2 ")
        answers = published.wait(4)
        assert [a["response_code"] for _, a, _ in answers] == [codes.MALFORMED] * 4
        assert SmsOutbox.select().count() == 0
    finally:
        courier.close()


def test_a_lone_surrogate_callback_topic_gets_no_answer_and_no_error(paths: Paths) -> None:
    intake, courier, published = make(paths)
    try:
        answer = intake.take(json.dumps({"command": "echo", "callback_topic": "cb\ud800"}).encode())
        assert answer["response_code"] == codes.MALFORMED and answer["message"].startswith("callback_topic ")
        intake.take(json.dumps({"command": "echo", "callback_topic": "c\x00b"}).encode())
        intake.take(b'{"command": "echo", "callback_topic": "after"}')
        assert published.wait(1) == [("after", {"command": "echo", "response_code": codes.SUCCESS,
                                                "message": "success", "data": {}}, {})]
    finally:
        courier.close()


def broken_modem_control(request: dict, timeout: float) -> dict:
    raise RuntimeError(f"no sense in the reply to {request['code']}")  # a value of the request: never logged


def test_a_request_whose_handling_raises_is_answered_1102_and_the_next_one_is_handled(paths: Paths, caplog) -> None:
    Modem.create(name="m1", port="/dev/null")
    settings.set_text("feeder_redis.allow_ussd", "true")  # brokers may not use USSD by default
    handler = Handler(Context(paths=paths, otp_key=keys.otp_key(paths), modem_control=broken_modem_control))
    published = Published()
    courier = Courier(paths, handler, published, "test")
    intake = Intake(handler, "redis:test", courier, 5)
    try:
        body = json.dumps({"command": "request-ussd", "callback_topic": "cb",
                           "data": {"modem": "m1", "code": "*123#"}}).encode()
        answer = intake.take(body)
        assert answer["response_code"] == codes.FAILED and "RuntimeError" in answer["message"], answer
        assert intake.take(b'{"command": "echo", "callback_topic": "cb", "data": {"next": 1}}')["data"] == {"next": 1}
        assert [a["response_code"] for _, a, _ in published.wait(2)] == [codes.FAILED, codes.SUCCESS]
        logged = caplog.text
        assert "raised RuntimeError" in logged and "*123#" not in logged
    finally:
        courier.close()


def test_a_failing_store_keeps_the_message_with_a_broker_that_keeps_it_and_answers_1102_otherwise(
        paths: Paths) -> None:
    intake, courier, published = make(paths)
    body = b'{"command": "send-sms", "callback_topic": "cb", "data": {"id": "s1", "receiver": "0812", "message": "m"}}'
    try:
        with renamed("sms_outbox"):
            try:
                intake.take(body)
            except StoreUnavailable:
                pass
            else:
                raise AssertionError("a broker that keeps the message must keep it: not acknowledged")
            answer = intake.take(body, delivery=UNKEPT)  # pub/sub, WebSocket: nothing would come again
            assert answer["response_code"] == codes.FAILED and "OperationalError" in answer["message"]
        assert published.wait(1)[0][1]["response_code"] == codes.FAILED
        assert intake.take(body)["response_code"] == codes.QUEUED, "taken once the store is back"
    finally:
        courier.close()


def test_a_message_delivered_too_often_is_dead_lettered_not_handled(paths: Paths) -> None:
    intake, courier, published = make(paths)
    body = b'{"command": "send-sms", "callback_topic": "cb", "data": {"id": "d1", "receiver": "0812", "message": "m"}}'
    try:
        answer = intake.take(body, delivery=Delivery(count=MAX_DELIVERIES + 1, ref="1-0 of sms"))
        assert answer["response_code"] == codes.FAILED and "dead-lettered" in answer["message"]
        assert answer["command"] == "send-sms"
        assert published.wait(1)[0][:2] == ("cb", answer)
        assert SmsOutbox.select().count() == 0, "not handled"
        [event] = Event.select().where(Event.kind == "feeder")
        assert (event.source, event.result) == ("amqp", "dead-lettered")
        assert "1-0 of sms" in event.cause and "0812" not in event.cause
        assert intake.take(body, delivery=Delivery(count=MAX_DELIVERIES))["response_code"] == codes.QUEUED
    finally:
        courier.close()


def test_flagged_redeliveries_are_counted_across_restarts_and_forgotten_once_taken(paths: Paths) -> None:
    ledger_path = paths.state_dir / "feeder-test.deliveries"
    body = b'{"command": "echo", "data": {"secret": "code 424242"}}'

    def restarted() -> DeliveryLedger:  # a new process reads the file the dead one wrote
        return DeliveryLedger(ledger_path, keys.otp_key(paths))

    for expected in range(2, MAX_DELIVERIES + 2):  # the first delivery carries no flag and is not counted
        assert restarted().count(body) == expected
    assert b"424242" not in ledger_path.read_bytes() and b"secret" not in ledger_path.read_bytes()
    assert oct(ledger_path.stat().st_mode & 0o777) == "0o600"
    ledger = restarted()
    ledger.forget(body)
    assert ledger.count(body) == 2, "acknowledged: a later repeat counts from the start"

    intake, courier, published = make(paths)
    intake.ledger = restarted()
    try:
        for _ in range(MAX_DELIVERIES - 2):
            intake.ledger.count(body)  # the deliveries the crashed processes counted: now at MAX_DELIVERIES
        dead = intake.take(body, delivery=Delivery(redelivered=True))
        assert dead["response_code"] == codes.FAILED and "delivered 6 times" in dead["message"]
        assert intake.take(body, delivery=Delivery(redelivered=True))["response_code"] == codes.SUCCESS, \
            "forgotten once acknowledged: a later repeat is handled"
        assert intake.ledger.count(body) == 2
    finally:
        courier.close()


def test_the_courier_outlives_a_failing_store_and_still_answers(paths: Paths, caplog) -> None:
    intake, courier, published = make(paths)
    try:
        body = {"command": "send-sms", "callback_topic": "cb", "data": {"id": "c1", "receiver": "0812", "message": "m"}}
        assert intake.take(json.dumps(body).encode())["response_code"] == codes.QUEUED
        row = SmsOutbox.get()
        with renamed("sms_outbox"):
            doorbell.ring_all(paths.outcome_bells())  # wake it: the turn reads the row and fails
            wait_until(lambda: "courier: cannot read outcomes (OperationalError" in caplog.text,
                       what="the courier to meet the failing store")
        assert published.items == [], "no answer made up while the store failed"
        assert outbox.claim(SmsOutbox, row.id)
        outbox.finish(paths, SmsOutbox, row.id, "sent", modem="m1")
        topic, answer, _ = published.wait(1)[0]
        assert (topic, answer["response_code"], answer["data"]["id"]) == ("cb", codes.SUCCESS, "c1")
        wait_until(lambda: "courier: the store answers again" in caplog.text, what="the recovery in the log")
    finally:
        courier.close()


def test_while_the_store_fails_a_followed_request_past_its_timeout_is_still_answered_1111(paths: Paths) -> None:
    intake, courier, published = make(paths, timeout=0.3)
    try:
        body = {"command": "send-sms", "callback_topic": "cb", "data": {"receiver": "0812", "message": "m"}}
        assert intake.take(json.dumps(body).encode())["response_code"] == codes.QUEUED
        with renamed("sms_outbox"):
            topic, answer, _ = published.wait(1)[0]
        assert (topic, answer["response_code"]) == ("cb", codes.QUEUED)
    finally:
        courier.close()
