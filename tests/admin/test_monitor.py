"""The Monitor page and its Server-Sent Events stream, through the Flask test client.

The stream's generator runs in the test's own thread as the response is read, so an event written
between two reads is one the stream must pick up on its next poll; every read is bounded by the
stream's configured lifetime.
"""

from __future__ import annotations

import json
import re
import time
from dataclasses import dataclass, field
from urllib.parse import urlsplit

import pytest

from otppi.msisdn import mask
from otppi.store.db import db
from otppi.store import settings
from otppi.store.models import Event, Modem, ModemStatus
from otppi.store.outbox import record_event

from .conftest import create_admin, logout

LIFETIME = 5.0


@pytest.fixture
def monitor_client(admin_app, admin_client):
    admin_app.config.update(OTPPI_MONITOR_POLL=0.02, OTPPI_MONITOR_HEARTBEAT=60.0,
                            OTPPI_MONITOR_LIFETIME=LIFETIME, OTPPI_MONITOR_STATUS_EVERY=60.0)
    return admin_client


@dataclass
class Message:
    id: str | None = None
    event: str = "message"
    data: str = ""
    comments: list[str] = field(default_factory=list)

    @property
    def json(self):
        return json.loads(self.data)


class SseReader:
    """Messages of a text/event-stream response, parsed as a browser's EventSource does (one per blank line)."""

    def __init__(self, response):
        self.response = response
        self.chunks = response.iter_encoded()
        self.buffer = ""
        self.retry: str | None = None

    def next(self) -> Message | None:
        """The next message (a comment-only block included), or None once the stream has ended."""
        while "\n\n" not in self.buffer:
            chunk = next(self.chunks, None)
            if chunk is None:
                return None
            self.buffer += chunk.decode()
        block, self.buffer = self.buffer.split("\n\n", 1)
        message = Message()
        data = []
        for line in block.split("\n"):
            name, _, value = line.partition(":")
            value = value[1:] if value.startswith(" ") else value
            if name == "":
                message.comments.append(value)
            elif name == "id":
                message.id = value
            elif name == "event":
                message.event = value
            elif name == "data":
                data.append(value)
            elif name == "retry":
                self.retry = value
        message.data = "\n".join(data)
        return message

    def next_of(self, event: str) -> Message:
        """The next message of kind *event*, skipping comments and other kinds."""
        while True:
            message = self.next()
            assert message is not None, f"the stream ended before a {event!r} message"
            if message.data and message.event == event:
                return message

    def close(self) -> None:
        self.response.close()


def open_stream(client, **kwargs) -> SseReader:
    response = client.get("/monitor/events", buffered=False, **kwargs)
    assert response.status_code == 200
    assert response.mimetype == "text/event-stream"
    assert response.headers["Cache-Control"] == "no-cache"
    return SseReader(response)


def sms_event(receiver: str = "628123456789", result: str = "sent", **kwargs) -> int:
    record_event("sms", receiver=receiver, result=result, **{"source": "api", "modem": "m0", **kwargs})
    return Event.select().order_by(Event.id.desc()).get().id


# ---------------------------------------------------------------- the page


def test_the_page_lists_the_last_50_events_newest_first(monitor_client):
    ids = [sms_event(f"6281234{n:05d}", cause=f"cause {n}") for n in range(60)]
    record_event("feeder", source="amqp", result="disconnected", cause="<b>refused</b>")
    html = monitor_client.get("/monitor").get_data(as_text=True)

    shown = [int(i) for i in re.findall(r'<tr id="event-(\d+)">', html)]
    assert len(shown) == 50
    assert shown == sorted(shown, reverse=True) and shown[0] == ids[-1] + 1
    assert f'id="event-{ids[10]}"' not in html, "older than the last 50"
    assert mask("628123400059") in html and "628123400059" not in html, "receivers only masked"
    assert "&lt;b&gt;refused&lt;/b&gt;" in html and "<b>refused</b>" not in html, "text escaped"
    assert f'data-after="{ids[-1] + 1}"' in html, "the stream starts after the newest row shown"
    assert 'src="/static/monitor.js"' in html


def test_the_page_shows_modem_status_and_the_last_state_of_each_broker(monitor_client):
    with db.atomic():
        Modem.create(name="m0", port="/dev/ttyUSB0")
        Modem.create(name="m1", port="/dev/ttyUSB1")
        Modem.create(name="spare", port="/dev/ttyUSB2", active=False)
        ModemStatus.create(name="m0", state="ready", connected=True, signal_dbm=-73, operator="TELKOMSEL")
        ModemStatus.create(name="m1", state="disconnected", last_error="port /dev/ttyUSB1 is gone")
    settings.set_text("feeder_amqp.enabled", "true")
    record_event("feeder", source="amqp", result="connected", cause="broker:5672")
    record_event("feeder", source="amqp", result="disconnected", cause="ACCESS_REFUSED")
    record_event("feeder", source="mqtt", result="connected", cause="mosquitto:1883")

    html = monitor_client.get("/monitor").get_data(as_text=True)
    modems = html[html.index('id="modems"'):html.index('id="feeders"')]
    rows = re.findall(r"<tr><td>(\w+)</td><td><span class=\"badge (\w*)\">([\w ]+)</span>", modems)
    assert rows == [("m0", "ok", "ready"), ("m1", "bad", "disconnected"), ("spare", "", "inactive")]
    assert "-73 dBm" in modems and "TELKOMSEL" in modems and "port /dev/ttyUSB1 is gone" in modems

    feeders = html[html.index('id="feeders"'):html.index('id="events"')]
    states = dict(re.findall(r"<tr><td>(\w+)</td><td><span class=\"badge \w*\">([\w ]+)</span>", feeders))
    assert states == {"WebSocket": "off", "RabbitMQ": "disconnected", "Redis": "off", "Mosquitto": "connected"}
    assert "ACCESS_REFUSED" in feeders and "broker:5672" not in feeders, "the last event of each broker"
    assert "the modem component is not running" in html, "no modem component in this test: said so"


def test_monitor_is_the_first_page_of_the_menu(monitor_client):
    html = monitor_client.get("/monitor").get_data(as_text=True)
    menu = html[html.index('<nav class="side">'):html.index("</nav>")]
    assert re.search(r'<div class="group">(\w+)</div>\s*<ul>\s*<li><a href="([^"]+)"', menu).groups() == (
        "Overview", "/monitor")


@pytest.mark.parametrize("path", ["/monitor", "/monitor/events", "/monitor/events?after=0"])
def test_anonymous_users_are_refused(client, path):
    create_admin(client)
    logout(client)
    sms_event()
    response = client.get(path, buffered=False)
    assert response.status_code == 302 and urlsplit(response.headers["Location"]).path == "/login"
    assert "6281" not in response.get_data(as_text=True)


# ---------------------------------------------------------------- the stream


def test_the_stream_sends_new_events_with_their_ids(monitor_client):
    old = sms_event(result="failed")
    reader = open_stream(monitor_client)
    try:
        assert reader.next().comments == [f"events after {old}"], "only what happens from now on"
        assert reader.retry == "3000"
        status = reader.next_of("status").json
        assert status["component"] == "the modem component is not running"

        first = sms_event("628123456789", modem="m1")
        second = sms_event("62811112222", result="failed", cause="+CMS ERROR: 38")
        got = reader.next_of("message")
        assert got.id == str(first)
        assert {k: v for k, v in got.json.items() if k != "time"} == {
            "id": first, "kind": "sms", "source": "api", "modem": "m1", "receiver": "6281*****789",
            "result": "sent", "cause": "", "tone": "ok"}
        assert re.fullmatch(r"\d{4}-\d\d-\d\d \d\d:\d\d:\d\d", got.json["time"])
        got = reader.next_of("message")
        assert (got.id, got.json["result"], got.json["tone"], got.json["cause"]) == (
            str(second), "failed", "bad", "+CMS ERROR: 38")
        assert got.json["receiver"] == mask("62811112222") == "6281****222"
    finally:
        reader.close()


def test_the_stream_resumes_after_last_event_id(monitor_client):
    ids = [sms_event(f"62812000000{n}") for n in range(5)]
    # A browser reconnecting sends Last-Event-ID; it wins over the page's ?after=.
    reader = open_stream(monitor_client, headers={"Last-Event-ID": str(ids[2])}, query_string={"after": ids[0]})
    try:
        got = [reader.next_of("message") for _ in range(2)]
        assert [m.id for m in got] == [str(ids[3]), str(ids[4])]
        later = sms_event()
        assert reader.next_of("message").id == str(later)
    finally:
        reader.close()

    reader = open_stream(monitor_client, query_string={"after": ids[3]})  # the page's newest row, first connect
    try:
        assert reader.next_of("message").id == str(ids[4])
    finally:
        reader.close()


def test_the_stream_pushes_status_when_a_modem_changes(monitor_client, admin_app):
    admin_app.config["OTPPI_MONITOR_STATUS_EVERY"] = 0.05
    with db.atomic():
        Modem.create(name="m0", port="/dev/ttyUSB0")
        ModemStatus.create(name="m0", state="starting")
    reader = open_stream(monitor_client)
    try:
        assert reader.next_of("status").json["modems"][0]["state"] == "starting"
        with db.atomic():
            ModemStatus.update(state="ready", connected=True, signal_dbm=-61).execute()
        modem = reader.next_of("status").json["modems"][0]
        assert (modem["name"], modem["state"], modem["tone"], modem["signal"]) == ("m0", "ready", "ok", "-61 dBm")
        record_event("feeder", source="redis", result="connected", cause="redis:6379")
        feeders = {f["name"]: f for f in reader.next_of("status").json["feeders"]}
        assert (feeders["redis"]["state"], feeders["redis"]["cause"]) == ("connected", "redis:6379")
    finally:
        reader.close()


def test_an_idle_stream_sends_heartbeats_and_ends_after_its_lifetime(monitor_client, admin_app):
    admin_app.config.update(OTPPI_MONITOR_HEARTBEAT=0.1, OTPPI_MONITOR_LIFETIME=0.6)
    started = time.monotonic()
    reader = open_stream(monitor_client)
    messages = []
    while (message := reader.next()) is not None:
        messages.append(message)
    elapsed = time.monotonic() - started
    assert 0.6 <= elapsed < LIFETIME, "ended by its lifetime, not by the test"
    assert sum(m.comments == ["keep-alive"] for m in messages) >= 3
    assert not [m for m in messages if m.event == "message" and m.data]
