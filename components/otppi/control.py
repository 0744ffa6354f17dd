"""The client side of the modem component's control socket (JSON lines on a Unix socket).

Only the modem component touches serial ports; interactive work (USSD,
manual SMS, modem tools) is asked of it here.
"""

from __future__ import annotations

import json
import socket
from typing import Any, Callable

from .paths import Paths

MAX_REPLY = 1 << 20


def control_path(paths: Paths) -> str:
    return str(paths.runtime_dir / "modem.sock")


def call(paths: Paths, request: dict[str, Any], timeout: float) -> dict[str, Any]:
    """One request, one reply; ``{"ok": false, "error": …}`` when the component is unreachable."""
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
                return {"ok": False, "error": "reply from the modem component is too large"}
        return json.loads(buf) if buf else {"ok": False, "error": "the modem component closed the connection"}
    except (FileNotFoundError, ConnectionRefusedError):
        return {"ok": False, "error": "the modem component is not running"}
    except socket.timeout:
        return {"ok": False, "error": "the modem component did not answer in time"}
    except (OSError, ValueError) as exc:
        return {"ok": False, "error": f"modem control failed: {exc}"}
    finally:
        sock.close()


def modem_control(paths: Paths) -> Callable[[dict[str, Any], float], dict[str, Any]]:
    return lambda request, timeout: call(paths, request, timeout)
