"""The client side of the modem component's control socket (JSON lines on a Unix socket).

Only the modem component touches serial ports; interactive work (USSD,
manual SMS, modem tools) is asked of it here.

One request line, one answer line: ``{"ok": true, ...}``, or an error as data, never as text to parse:
``{"ok": false, "error": <words for a person>, "kind": <one of KINDS>, "cme": <+CME ERROR code or null>}``.
A request's ``"timeout"`` is the caller's deadline in seconds: the component answers by then, and skips
work whose caller has gone.
"""

from __future__ import annotations

import json
import socket
from typing import Any, Callable

from .paths import Paths

MAX_REPLY = 1 << 20
#: Seconds the client waits for the socket beyond the deadline it gave the modem component.
MARGIN = 10.0

#: What went wrong, for clients to decide on.
KINDS = {
    "not_running": "the modem component is not running",
    "no_answer": "the modem component did not answer in time",
    "protocol": "the answer could not be read",
    "bad_request": "the request itself is wrong (an unknown operation, a bad value)",
    "no_modem": "no active modem has that name",
    "unavailable": "the modem cannot take the work now (not connected, carrying a PPP link, stopping)",
    "busy": "another interactive call is already waiting for this modem",
    "timeout": "the modem or the network did not finish before the deadline (or never got to it)",
    "cme": "the modem answered +CME ERROR (the code is in \"cme\")",
    "ussd": "the network ended the USSD request without a reply",
    "unsupported": "the modem cannot do this at all",
    "modem": "the modem refused or failed the command",
    "store": "the modem component could not read or write the database",
    "internal": "a bug in the modem component (it is logged there)",
}


def failure(kind: str, error: str = "", cme: int | None = None) -> dict[str, Any]:
    """An error answer; *error* defaults to the kind's description."""
    return {"ok": False, "error": (error or KINDS[kind])[:500], "kind": kind, "cme": cme}


class ControlFailure(Exception):
    """An error answer of the control socket, as an exception: its words, ``kind`` and ``cme``."""

    def __init__(self, answer: dict[str, Any]):
        kind = answer.get("kind")
        self.kind = kind if kind in KINDS else "internal"
        super().__init__(str(answer.get("error") or KINDS[self.kind])[:500])
        cme = answer.get("cme")
        self.cme = cme if isinstance(cme, int) else None


def control_path(paths: Paths) -> str:
    return str(paths.runtime_dir / "modem.sock")


def call(paths: Paths, request: dict[str, Any], timeout: float) -> dict[str, Any]:
    """One request, one reply within *timeout* seconds; an error answer when the component is unreachable."""
    sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    sock.settimeout(timeout)
    try:
        sock.connect(control_path(paths))
        sock.sendall(json.dumps(request).encode() + b"\n")
        buf = b""
        while not buf.endswith(b"\n"):
            chunk = sock.recv(65536)
            if not chunk:
                break
            buf += chunk
            if len(buf) > MAX_REPLY:
                return failure("protocol", "reply from the modem component is too large")
        if not buf:
            return failure("protocol", "the modem component closed the connection")
        answer = json.loads(buf)
        return answer if isinstance(answer, dict) else failure("protocol")
    except (FileNotFoundError, ConnectionRefusedError):
        return failure("not_running")
    except socket.timeout:
        return failure("no_answer")
    except (OSError, ValueError) as exc:
        return failure("protocol", f"modem control failed: {exc}")
    finally:
        sock.close()


def ask(paths: Paths, request: dict[str, Any], timeout: float) -> dict[str, Any]:
    """Ask with a deadline of *timeout* seconds (sent as the request's ``timeout``); raise
    :class:`ControlFailure` for an error answer."""
    answer = call(paths, {**request, "timeout": timeout}, timeout + MARGIN)
    if not answer.get("ok"):
        raise ControlFailure(answer)
    return answer


def modem_control(paths: Paths) -> Callable[[dict[str, Any], float], dict[str, Any]]:
    return lambda request, timeout: call(paths, request, timeout)
