"""The modem component's control socket: interactive work, JSON lines on a Unix socket.

Only this component touches serial ports, so USSD, modem information, the
IMEI and SIM tools and mobile internet are asked of it here (``otppi.control``
is the client). One request line, one answer line: ``{"ok": true, ...}`` or
``{"ok": false, "error": "..."}``.
"""

from __future__ import annotations

import json
import logging
import os
import socketserver
import threading
from typing import Any, Callable

from ..control import MAX_REPLY
from ..paths import Paths
from .device import ModemDevice
from .errors import ModemError

log = logging.getLogger(__name__)

CALL_TIMEOUT = 60.0


class ControlError(Exception):
    """A request that cannot be served; its text is the answer's error."""


class ModemControl:
    """What each operation does; the socket server only frames requests and answers."""

    def __init__(self, dispatcher, internet=None):
        self.dispatcher = dispatcher
        self.internet = internet

    def _worker(self, request: dict[str, Any]):
        name = request.get("modem")
        if not isinstance(name, str) or name not in self.dispatcher.workers:
            raise ControlError(f"no active modem named {str(name)[:40]!r}")
        return self.dispatcher.workers[name]

    def _call(self, request: dict[str, Any], fn: Callable[[ModemDevice], Any]) -> Any:
        timeout = float(request.get("timeout", CALL_TIMEOUT))
        return self._worker(request).call(fn, min(max(timeout, 1.0), 300.0))

    def handle(self, request: dict[str, Any]) -> dict[str, Any]:
        op = request.get("op")
        method = getattr(self, f"op_{op}", None) if isinstance(op, str) and op.isidentifier() else None
        if method is None:
            raise ControlError(f"unknown operation {str(op)[:40]!r}")
        return {"ok": True, **method(request)}

    def op_status(self, request: dict[str, Any]) -> dict[str, Any]:
        return {"modems": [
            {"name": name, "state": w.state, "connected": w.connected, "busy": w.busy, "failures": w.failures,
             "quarantined_until": w.quarantined_until or None, "error": w.last_error}
            for name, w in sorted(self.dispatcher.workers.items())]}

    def op_info(self, request: dict[str, Any]) -> dict[str, Any]:
        return {"info": self._call(request, lambda d: d.info().as_dict())}

    def op_ussd(self, request: dict[str, Any]) -> dict[str, Any]:
        code = request.get("code")
        if not isinstance(code, str):
            raise ControlError("code must be a string such as *123#")
        wait = float(request.get("timeout", 30.0))
        reply, session = self._call(request, lambda d: d.ussd(code, timeout=wait))
        return {"reply": reply, "session": session}

    def op_ussd_cancel(self, request: dict[str, Any]) -> dict[str, Any]:
        self._call(request, lambda d: d.ussd_cancel())
        return {}

    def op_imei(self, request: dict[str, Any]) -> dict[str, Any]:
        imei = str(request.get("imei", ""))
        self._call(request, lambda d: d.set_imei(imei))
        return {"imei": imei}

    def op_sim_pin(self, request: dict[str, Any]) -> dict[str, Any]:
        action, pin, new = request.get("action"), str(request.get("pin", "")), str(request.get("new_pin", ""))
        if action in ("enable", "disable"):
            self._call(request, lambda d: d.sim_pin_lock(action == "enable", pin))
        elif action == "change":
            self._call(request, lambda d: d.sim_pin_change(pin, new))
        else:
            raise ControlError("action must be enable, disable or change")
        return {"action": action}

    def op_inbox_refresh(self, request: dict[str, Any]) -> dict[str, Any]:
        return {"stored": self._call(request, lambda d: self._worker(request).read_inbox())}

    def op_internet(self, request: dict[str, Any]) -> dict[str, Any]:
        if self.internet is None:
            raise ControlError("mobile internet is not available")
        return self.internet.handle(request, self._worker(request))


class _Handler(socketserver.StreamRequestHandler):
    timeout = 330

    def handle(self) -> None:
        line = self.rfile.readline(MAX_REPLY)
        try:
            request = json.loads(line)
            if not isinstance(request, dict):
                raise ControlError("a request is a JSON object")
            answer = self.server.control.handle(request)
        except (ValueError, ControlError, ModemError) as exc:
            answer = {"ok": False, "error": str(exc)[:500]}
        except TimeoutError:
            answer = {"ok": False, "error": "the modem did not finish in time"}
        except Exception as exc:  # answered, logged: the socket keeps serving
            log.exception("control request failed")
            answer = {"ok": False, "error": f"internal error: {exc}"[:500]}
        self.wfile.write(json.dumps(answer).encode() + b"\n")


class _Server(socketserver.ThreadingUnixStreamServer):
    daemon_threads = True


class ControlServer:
    def __init__(self, paths: Paths, control: ModemControl):
        self.path = paths.runtime_dir / "modem.sock"
        try:
            self.path.unlink()
        except FileNotFoundError:
            pass
        self.server = _Server(str(self.path), _Handler)
        os.chmod(self.path, 0o660)
        self.server.control = control
        self.thread = threading.Thread(target=self.server.serve_forever, name="modem-control", daemon=True)

    def start(self) -> None:
        self.thread.start()

    def stop(self) -> None:
        self.server.shutdown()
        self.server.server_close()
        try:
            self.path.unlink()
        except FileNotFoundError:
            pass
