"""request-ussd is a permission: of each API user over REST, of each subscriber for broker requests; off for
new users and every broker, kept on at the upgrade for the API users that could use it before.

Through the one handler with a real store; the handler has no modem control here, so a request that passes
the permission answers "not reachable" (1102) and one that does not answers 1100 before anything else."""

from __future__ import annotations

from pathlib import Path

import pytest

from otppi import codes
from otppi.auth import hash_password
from otppi.contract import validate as build
from otppi.handler import Handler
from otppi.store import settings
from otppi.store.db import db
from otppi.store.migrations import migrate
from otppi.store.models import ApiUser, FeederMqttSettings, FeederWsSettings, InboxMessage, Modem

from .test_store import open_version_1

REQUEST = {"command": "request-ussd", "data": {"modem": "m", "code": "*888#"}}


@pytest.fixture
def modem(paths) -> None:
    with db.atomic():
        Modem.create(name="m", port="/dev/ttyUSB0")


def ussd(handler: Handler, source: str) -> dict:
    return handler.handle(build(REQUEST), source=source, wait=0.0)


def test_an_api_user_needs_the_permission(handler: Handler, modem) -> None:
    with db.atomic():
        ApiUser.create(username="app", password_hash=hash_password("pw-long-enough"))
        ApiUser.create(username="ops", password_hash=hash_password("pw-long-enough"), allow_ussd=True)
    refused = ussd(handler, "rest:app")
    assert refused["response_code"] == codes.UNAUTHORIZED
    assert refused["message"].startswith("API user 'app' may not use request-ussd (USSD codes can move credit)")
    assert ussd(handler, "rest:ghost")["response_code"] == codes.UNAUTHORIZED, "a removed user has no permission"
    allowed = ussd(handler, "rest:ops")
    assert (allowed["response_code"], allowed["message"]) == (codes.FAILED, "the modem component is not reachable")
    assert ApiUser.get(ApiUser.username == "app").allow_ussd is False, "new users start without it"


def test_a_broker_needs_its_subscriber_to_allow_it(handler: Handler, modem) -> None:
    refused = ussd(handler, "mqtt:broker.example")
    assert refused["response_code"] == codes.UNAUTHORIZED
    assert refused["message"] == (
        "request-ussd through the mqtt subscriber is off (USSD codes can move credit): an administrator turns on "
        "Allow USSD in its settings (feeder_mqtt.allow_ussd)")
    settings.set_text("feeder_mqtt.allow_ussd", "true")
    assert ussd(handler, "mqtt:broker.example")["response_code"] == codes.FAILED
    assert ussd(handler, "ws:broker.example")["response_code"] == codes.UNAUTHORIZED, "each subscriber on its own"
    assert ussd(handler, "somewhere")["response_code"] == codes.UNAUTHORIZED
    assert FeederWsSettings.load().allow_ussd is False and FeederMqttSettings.load().allow_ussd is True


def test_upgrade_keeps_request_ussd_for_existing_api_users_only(short_tmp: Path) -> None:
    open_version_1(short_tmp / "v1.db",
                   "insert into api_user (username, password_hash, phone, email, active, created_at)"
                   " values ('before', 'x', '', '', 1, 0)",
                   "insert into inbox_message (modem, sender, body, received_at, is_read, parts)"
                   " values ('m', '62812', 'hi', 0, 0, 1)")
    try:
        migrate(db)
        with db.atomic():
            ApiUser.create(username="after", password_hash="x")
        assert {u.username: u.allow_ussd for u in ApiUser.select()} == {"before": True, "after": False}
        assert FeederMqttSettings.load().allow_ussd is False, "brokers start without it, upgraded or not"
        assert InboxMessage.get().incomplete is False
    finally:
        db.close()
