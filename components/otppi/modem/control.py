"""The modem component's control socket: interactive work, JSON lines on a Unix socket.

Only this component touches serial ports, so USSD, modem information, the
IMEI and SIM tools and mobile internet are asked of it here (``otppi.control``
is the client, and describes the answers). An error travels as data: the
typed error of the modem driver becomes a ``kind`` (and a ``cme`` code).
A request's ``timeout`` is its caller's deadline, handed to the modem's
worker with the call, which skips the call once the caller has gone.
"""

from __future__ import annotations

import json
import logging
import os
import socketserver
import threading
from typing import Any, Callable

from peewee import DatabaseError

from ..control import MAX_REPLY, failure
from ..paths import Paths
from .device import ModemDevice
from .errors import (CmeError, CommandError, ModemBusy, ModemClosed, ModemError, ModemTimeout, ModemUnavailable,
                     Unsupported, UssdError)

log = logging.getLogger(__name__)

CALL_TIMEOUT = 60.0
MAX_CALL_TIMEOUT = 300.0


class ControlError(Exception):
    """A request that cannot be served; its text is the answer's error."""

    def __init__(self, message: str, kind: str = "bad_request"):
        super().__init__(message)
        self.kind = kind


#: The driver's typed errors and what they are called on the wire, most specific first.
_KINDS: tuple[tuple[type[BaseException], str], ...] = (
    (ModemBusy, "busy"), (ModemUnavailable, "unavailable"), (ModemClosed, "unavailable"),
    (ModemTimeout, "timeout"), (TimeoutError, "timeout"), (CmeError, "cme"), (UssdError, "ussd"),
    (Unsupported, "unsupported"), (CommandError, "modem"), (ModemError, "modem"), (ValueError, "bad_request"),
    (DatabaseError, "store"),
)


def error_answer(exc: BaseException) -> dict[str, Any]:
    """The answer for a request that failed with *exc*."""
    if isinstance(exc, ControlError):
        return failure(exc.kind, str(exc))
    kind = next((name for cls, name in _KINDS if isinstance(exc, cls)), "internal")
    if kind == "internal":
        log.error("control request failed", exc_info=exc)
        return failure(kind, f"internal error: {exc}")
    if isinstance(exc, TimeoutError) and not isinstance(exc, ModemError):
        return failure(kind, "the modem did not finish in time")
    return failure(kind, str(exc), exc.code if isinstance(exc, CmeError) else None)


class ModemControl:
    """What each operation does; the socket server only frames requests and answers."""

    def __init__(self, dispatcher, internet=None):
        self.dispatcher = dispatcher
        self.internet = internet

    def _worker(self, request: dict[str, Any]):
        name = request.get("modem")
        if not isinstance(name, str) or name not in self.dispatcher.workers:
            raise ControlError(f"no active modem named {str(name)[:40]!r}", "no_modem")
        return self.dispatcher.workers[name]

    def _call(self, request: dict[str, Any], fn: Callable[[ModemDevice, float], Any]) -> Any:
        """Run *fn(device, seconds left)* on the modem's worker before the request's deadline."""
        timeout = float(request.get("timeout", CALL_TIMEOUT))
        return self._worker(request).call(fn, min(max(timeout, 1.0), MAX_CALL_TIMEOUT))

    def handle(self, request: dict[str, Any]) -> dict[str, Any]:
        op = request.get("op")
        method = getattr(self, f"op_{op}", None) if isinstance(op, str) and op.isidentifier() else None
        if method is None:
            raise ControlError(f"unknown operation {str(op)[:40]!r}")
        return {"ok": True, **method(request)}

    def op_status(self, request: dict[str, Any]) -> dict[str, Any]:
        return {"modems": [
            {"name": name, "state": w.state, "connected": w.connected, "busy": w.busy, "failures": w.failures,
             "quarantined_until": w.quarantined_until or None, "error": w.last_error, "in_call": w.in_call,
             "calls_waiting": w.calls_waiting}
            for name, w in sorted(self.dispatcher.workers.items())]}

    def op_info(self, request: dict[str, Any]) -> dict[str, Any]:
        return {"info": self._call(request, lambda d, left: d.info().as_dict())}

    def op_ussd(self, request: dict[str, Any]) -> dict[str, Any]:
        code = request.get("code")
        if not isinstance(code, str):
            raise ControlError("code must be a string such as *123#")
        reply, session = self._call(request, lambda d, left: d.ussd(code, timeout=left))
        return {"reply": reply, "session": session}

    def op_ussd_cancel(self, request: dict[str, Any]) -> dict[str, Any]:
        self._call(request, lambda d, left: d.ussd_cancel())
        return {}

    def op_imei(self, request: dict[str, Any]) -> dict[str, Any]:
        imei = str(request.get("imei", ""))
        self._call(request, lambda d, left: d.set_imei(imei))
        return {"imei": imei}

    def op_sim_pin(self, request: dict[str, Any]) -> dict[str, Any]:
        action, pin, new = request.get("action"), str(request.get("pin", "")), str(request.get("new_pin", ""))
        if action in ("enable", "disable"):
            self._call(request, lambda d, left: d.sim_pin_lock(action == "enable", pin))
        elif action == "change":
            self._call(request, lambda d, left: d.sim_pin_change(pin, new))
        else:
            raise ControlError("action must be enable, disable or change")
        return {"action": action}

    def op_inbox_refresh(self, request: dict[str, Any]) -> dict[str, Any]:
        return {"stored": self._call(request, lambda d, left: self._worker(request).read_inbox())}

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
        except Exception as exc:  # answered as data (an unexpected one is logged): the socket keeps serving
            answer = error_answer(exc)
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
