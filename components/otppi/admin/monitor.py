"""The Monitor: every request's outcome as it happens, the modems' status and the brokers' connections.

The page renders the latest events itself, so it works without JavaScript; ``monitor.js`` then follows
``/monitor/events``, a Server-Sent Events stream read from the Event table (the store is the truth: every
component writes its outcomes there). Each event carries its row id as the SSE ``id``, so a browser that
reconnects (``Last-Event-ID``) misses nothing still kept. A stream ends after a bounded time, so an
abandoned tab does not hold one of the web server's threads forever; the browser's EventSource reconnects.
"""

from __future__ import annotations

import json
import time
from typing import Any, Iterator
from zoneinfo import ZoneInfo

from flask import Blueprint, Response, current_app, render_template, request
from peewee import fn

from .. import control
from ..paths import Paths
from ..store.models import (
    Event,
    FeederAmqpSettings,
    FeederMqttSettings,
    FeederRedisSettings,
    FeederWsSettings,
    Modem,
    ModemStatus,
    SmsSettings,
)
from .toolkit import device_zone, local_time

bp = Blueprint("monitor", __name__)

MENU = ("Overview", [("Monitor", "monitor.page", {})])

RECENT = 50
BATCH = 200
#: Seconds: the Event table is polled this often, a comment keeps idle connections open, a stream ends.
POLL = 0.5
HEARTBEAT = 15.0
LIFETIME = 600.0
#: Seconds between two looks at modem, broker and modem-component status while nothing happens.
STATUS_EVERY = 2.0
CONTROL_TIMEOUT = 2.0

#: The broker feeders: their source name in events, their title, their settings page.
FEEDERS = (("ws", "WebSocket", FeederWsSettings), ("amqp", "RabbitMQ", FeederAmqpSettings),
           ("redis", "Redis", FeederRedisSettings), ("mqtt", "Mosquitto", FeederMqttSettings))

GOOD = frozenset({"sent", "delivered", "connected", "received", "unblocked"})
BAD = frozenset({"failed", "expired", "disconnected", "blocked"})


def _tone(result: str) -> str:
    return "ok" if result in GOOD else "bad" if result in BAD else ""


def event_dict(e: Event, zone: ZoneInfo) -> dict[str, Any]:
    return {"id": e.id, "time": local_time(e.at, zone), "kind": e.kind, "source": e.source, "modem": e.modem,
            "receiver": e.receiver, "result": e.result, "cause": e.cause, "tone": _tone(e.result)}


def _modems(zone: ZoneInfo, live: bool) -> list[dict[str, Any]]:
    status = {s.name: s for s in ModemStatus.select()}
    out = []
    for m in Modem.select().order_by(Modem.name):
        s = status.get(m.name)
        if not m.active:
            state, tone = "inactive", ""
        elif s is None:
            state, tone = ("starting" if live else "unknown"), ""
        else:
            state, tone = s.state, ("ok" if s.state in ("ready", "internet") and s.connected else "bad")
        signal = s.signal_dbm if s is not None else None
        out.append({"name": m.name, "state": state, "tone": tone,
                    "signal": f"{signal} dBm" if signal is not None else "-",
                    "operator": (s.operator if s is not None and s.operator else m.operator) or "-",
                    "error": (s.last_error if s is not None and m.active else "") or "",
                    "since": local_time(s.updated_at, zone) if s is not None and m.active else "-"})
    return out


def _feeders(zone: ZoneInfo) -> list[dict[str, Any]]:
    latest = Event.select(fn.MAX(Event.id)).where(Event.kind == "feeder").group_by(Event.source)
    last = {e.source: e for e in Event.select().where(Event.id.in_(latest))}
    out = []
    for name, title, page in FEEDERS:
        enabled = page.load().enabled
        e = last.pop(name, None)
        if e is None:
            state, tone = ("not connected yet" if enabled else "off"), ("" if not enabled else "bad")
        else:
            state, tone = e.result, _tone(e.result)
            if not enabled and e.result == "disconnected":
                state, tone = "off", ""
        out.append({"name": name, "title": title, "enabled": enabled, "state": state, "tone": tone,
                    "cause": e.cause if e is not None else "", "since": local_time(e.at, zone) if e else "-"})
    for name, e in sorted(last.items()):  # a feeder this page does not know by name
        out.append({"name": name, "title": name, "enabled": True, "state": e.result, "tone": _tone(e.result),
                    "cause": e.cause, "since": local_time(e.at, zone)})
    return out


def status_snapshot(paths: Paths, zone: ZoneInfo) -> dict[str, Any]:
    answer = control.call(paths, {"op": "status"}, CONTROL_TIMEOUT)
    component = "" if answer.get("ok") else str(answer.get("error") or "the modem component did not answer")
    return {"component": component, "modems": _modems(zone, not component), "feeders": _feeders(zone)}


@bp.route("/monitor")
def page():
    zone = device_zone()
    events = [event_dict(e, zone) for e in Event.select().order_by(Event.id.desc()).limit(RECENT)]
    return render_template("monitor/page.html", events=events, last_id=events[0]["id"] if events else 0,
                           status=status_snapshot(current_app.config["OTPPI_PATHS"], zone),
                           monitor_traffic=SmsSettings.load().monitor_traffic)


def _start_after() -> int:
    """Resume after the browser's Last-Event-ID; else after ``?after=`` (the page's newest row); else now."""
    for value in (request.headers.get("Last-Event-ID"), request.args.get("after")):
        if value and value.strip().isdigit():
            return int(value)
    return Event.select(fn.MAX(Event.id)).scalar() or 0


def _sse(data: dict[str, Any], *, event: str = "", event_id: int | None = None) -> str:
    lines = []
    if event:
        lines.append(f"event: {event}")
    if event_id is not None:
        lines.append(f"id: {event_id}")
    lines.append("data: " + json.dumps(data, ensure_ascii=False, separators=(",", ":")))
    return "\n".join(lines) + "\n\n"


def stream(paths: Paths, zone: ZoneInfo, after: int, *, poll: float = POLL, heartbeat: float = HEARTBEAT,
           lifetime: float = LIFETIME, status_every: float = STATUS_EVERY,
           clock=time.monotonic, sleep=time.sleep, stopped=lambda: False) -> Iterator[str]:
    """The SSE text: new events in id order, status when it changes, a comment while idle, then the end
    (after *lifetime*, or as soon as *stopped* says the server is stopping)."""
    start = clock()
    yield f"retry: 3000\n: events after {after}\n\n"
    last_status: dict[str, Any] | None = None
    next_status = last_output = start
    while True:
        now = clock()
        if now - start >= lifetime or stopped():
            return
        rows = list(Event.select().where(Event.id > after).order_by(Event.id).limit(BATCH))
        for e in rows:
            yield _sse(event_dict(e, zone), event_id=e.id)
            after = e.id
        sent = bool(rows)
        if rows or now >= next_status:
            snapshot = status_snapshot(paths, zone)
            if snapshot != last_status:
                yield _sse(snapshot, event="status")
                last_status, sent = snapshot, True
            next_status = now + status_every
        if sent:
            last_output = now
        elif now - last_output >= heartbeat:
            yield ": keep-alive\n\n"
            last_output = now
        if len(rows) < BATCH:
            sleep(poll)


@bp.route("/monitor/events")
def events():
    config = current_app.config
    # The server's stop waits for every response to end: an open stream must end at once, not at its
    # next write into a closed socket (up to a heartbeat later).
    stopping = current_app.extensions["otppi_stopping"]
    body = stream(config["OTPPI_PATHS"], device_zone(), _start_after(),
                  poll=config.get("OTPPI_MONITOR_POLL", POLL),
                  heartbeat=config.get("OTPPI_MONITOR_HEARTBEAT", HEARTBEAT),
                  lifetime=config.get("OTPPI_MONITOR_LIFETIME", LIFETIME),
                  status_every=config.get("OTPPI_MONITOR_STATUS_EVERY", STATUS_EVERY),
                  sleep=stopping.wait, stopped=stopping.is_set)
    return Response(body, mimetype="text/event-stream",
                    headers={"Cache-Control": "no-cache", "X-Accel-Buffering": "no"})
