"""The simulator's control socket: JSON lines over a Unix stream socket in its directory.

One request object per line, one answer object per line: {"ok": true, ...} or
{"ok": false, "error": "..."}. Requests ("modem" is the modem's index):

    {"cmd": "ping"}
    {"cmd": "list"}                                   -> {"modems": [{index, path, imei, ...}]}
    {"cmd": "sent", "modem": 0, "clear": false}       -> {"messages": [...]}  (no modem: all)
    {"cmd": "inject_sms", "modem": 0, "sender": "+62812...", "text": "hi",
     "timestamp": "2026-01-02T03:04:05+07:00"}        -> {"indexes": [1]}
    {"cmd": "status_report", "modem": 0, "message_reference": 5, "status": 0} -> {"index": null}
    {"cmd": "ussd_reply", "modem": 0, "code": "*888#", "reply": "text" | {"text", "options"}}
    {"cmd": "urc", "modem": 0, "line": "RING"}
    {"cmd": "fault", "modem": 0, "fault": NAME, ...}

Fault names: "cms_error_on_send" (count=1, code=38), "silent", "answer_again", "unplug",
"replug", "sim_busy" (seconds: power cycle with the SIM busy that long), "network_delay"
(seconds), "ussd_delay" (seconds), "prompt_delay" (seconds), "no_carrier_on_dial", "clear".
"""

from __future__ import annotations

import json
import logging
import os
import socket
import socketserver
import threading
from collections.abc import Callable
from dataclasses import asdict
from typing import TYPE_CHECKING, Any

from .profiles import ussd_from_json

if TYPE_CHECKING:
    from . import Simulator
    from .device import SimulatedModem

log = logging.getLogger(__name__)


def _message_json(message: Any) -> dict[str, Any]:
    data = asdict(message)
    data["time"] = message.time.isoformat()
    return data


def _fault(modem: SimulatedModem, request: dict[str, Any]) -> dict[str, Any]:
    name = request.get("fault")
    actions: dict[str, Callable[[], None]] = {
        "cms_error_on_send": lambda: modem.fail_sends(int(request.get("count", 1)),
                                                      int(request.get("code", 38))),
        "silent": modem.go_silent,
        "answer_again": modem.answer_again,
        "unplug": modem.unplug,
        "replug": modem.replug,
        "sim_busy": lambda: modem.power_cycle(float(request.get("seconds", 5.0))),
        "network_delay": lambda: modem.set_network_delay(float(request["seconds"])),
        "ussd_delay": lambda: modem.set_ussd_delay(float(request["seconds"])),
        "prompt_delay": lambda: modem.set_prompt_delay(float(request["seconds"])),
        "no_carrier_on_dial": lambda: modem.call(setattr, modem, "dial_result", "NO CARRIER"),
        "clear": modem.clear_faults,
    }
    if name not in actions:
        raise ValueError(f"unknown fault {name!r}; known: {', '.join(actions)}")
    actions[name]()
    return {}


def handle_request(simulator: Simulator, request: dict[str, Any]) -> dict[str, Any]:
    """The answer to one control request (without the "ok" field); raises on a bad request."""
    command = request.get("cmd")
    if command == "ping":
        return {}
    if command == "list":
        return {"modems": simulator.describe()}
    if command == "sent" and request.get("modem") is None:
        messages = simulator.sent_messages()
        if request.get("clear"):
            for each in simulator:
                each.sent.clear()
        return {"messages": [_message_json(m) for m in messages]}
    modem = simulator[int(request["modem"])]
    if command == "sent":
        messages = modem.sent.messages()
        if request.get("clear"):
            modem.sent.clear()
        return {"messages": [_message_json(m) for m in messages]}
    if command == "inject_sms":
        indexes = modem.receive_sms(str(request["sender"]), str(request["text"]),
                                    request.get("timestamp"))
        return {"indexes": indexes}
    if command == "status_report":
        index = modem.send_status_report(int(request["message_reference"]),
                                         int(request.get("status", 0)))
        return {"index": index}
    if command == "ussd_reply":
        modem.set_ussd_reply(str(request["code"]), ussd_from_json(request["reply"]))
        return {}
    if command == "urc":
        modem.emit(str(request["line"]))
        return {}
    if command == "fault":
        return _fault(modem, request)
    raise ValueError(f"unknown command {command!r}")


class _Handler(socketserver.StreamRequestHandler):
    server: _Server

    def handle(self) -> None:
        for raw in self.rfile:
            if not raw.strip():
                continue
            try:
                request = json.loads(raw)
                if not isinstance(request, dict):
                    raise ValueError("a request is a JSON object")
                answer = {"ok": True, **handle_request(self.server.simulator, request)}
            except (ValueError, KeyError, IndexError, TypeError, OverflowError,
                    RuntimeError, TimeoutError) as exc:
                answer = {"ok": False, "error": f"{type(exc).__name__}: {exc}"}
            self.wfile.write(json.dumps(answer).encode() + b"\n")
            self.wfile.flush()


class _Server(socketserver.ThreadingUnixStreamServer):
    daemon_threads = True
    block_on_close = False

    def __init__(self, path: str, simulator: Simulator) -> None:
        self.simulator = simulator
        super().__init__(path, _Handler)


class ControlServer:
    def __init__(self, simulator: Simulator, path: str) -> None:
        self.simulator = simulator
        self.path = path
        self._server: _Server | None = None
        self._thread: threading.Thread | None = None

    def start(self) -> None:
        if os.path.exists(self.path):
            os.unlink(self.path)  # left by a simulator that was killed
        self._server = _Server(self.path, self.simulator)
        self._thread = threading.Thread(target=self._server.serve_forever, args=(0.1,),
                                        name="simulator-control", daemon=True)
        self._thread.start()

    def stop(self) -> None:
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()
            self._server = None
        if self._thread is not None:
            self._thread.join(5.0)
        try:
            os.unlink(self.path)
        except FileNotFoundError:
            pass


def request(path: str, message: dict[str, Any], timeout: float = 10.0) -> dict[str, Any]:
    """Send one control request and return the answer (a client for tests and the dev run)."""
    with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as sock:
        sock.settimeout(timeout)
        sock.connect(path)
        sock.sendall(json.dumps(message).encode() + b"\n")
        with sock.makefile("rb") as answers:
            line = answers.readline()
    if not line:
        raise ConnectionError("the simulator closed the control connection")
    return json.loads(line)
