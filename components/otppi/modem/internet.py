"""Mobile internet through a modem: pppd peer and chat script, link up and down.

The files are rendered by pure functions (golden-file tested), written
atomically under ``$OTPPI_ROOT/etc``, and run by the real pppd and chat.
While a modem carries the PPP link its port belongs to pppd, so it sends no
SMS: its traffic goes to the other modems until the link is down again.
"""

from __future__ import annotations

import logging
import os
import re
import shutil
import subprocess
import threading
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from ..fsutil import atomic_write
from ..paths import Paths
from ..store.models import Modem
from .errors import Unsupported

log = logging.getLogger(__name__)

_APN = re.compile(r"[A-Za-z0-9._-]{1,100}")
_DIAL = re.compile(r"[0-9*#]{1,20}")
_AT = re.compile(r"AT[ -~]{0,120}")
_CREDENTIAL = re.compile(r"[ -~]{0,64}")
_PORT = re.compile(r"/[A-Za-z0-9._:/+-]{1,200}")

#: pppd(8) EXIT STATUS, the ones a user can act on.
PPPD_EXITS = {
    1: "fatal error", 2: "bad options", 3: "pppd is not setuid root", 4: "no PPP support in the kernel (/dev/ppp)",
    6: "could not lock the port", 7: "could not open the port", 8: "the connect script (chat) failed",
    10: "PPP negotiation failed", 15: "the peer stopped answering", 16: "the modem hung up",
    19: "authentication to the peer failed",
}


class InternetError(ValueError):
    """Dial-up settings that cannot be written safely, or a link that cannot be brought up."""


@dataclass(frozen=True)
class DialSettings:
    name: str
    port: str
    baud_rate: int
    apn: str
    username: str
    password: str
    dial_number: str
    dial_command: str
    init: tuple[str, ...]

    @classmethod
    def from_row(cls, row: Modem) -> "DialSettings":
        inits = tuple(v for v in (row.init_dial_1, row.init_dial_2, row.init_dial_3, row.init_dial_4,
                                  row.init_dial_5) if v)
        return cls(row.name, row.port, row.baud_rate, row.apn, row.apn_username, row.apn_password,
                   row.dial_number or "*99#", row.dial_command or "ATD", inits)

    def validate(self) -> None:
        if not _PORT.fullmatch(self.port):
            raise InternetError("port must be a device path such as /dev/ttyUSB0")
        if not _APN.fullmatch(self.apn):
            raise InternetError("APN must be letters, digits, '.', '_' or '-'")
        if not _DIAL.fullmatch(self.dial_number):
            raise InternetError("dial number must be digits, * and #")
        for label, value in (("dial command", self.dial_command), *(("init string", v) for v in self.init)):
            if not _AT.fullmatch(value) or "'" in value or "\\" in value:
                raise InternetError(f"{label} {value[:30]!r} must be one AT command without ' or \\")
        for label, value in (("APN username", self.username), ("APN password", self.password)):
            if not _CREDENTIAL.fullmatch(value) or '"' in value or "\\" in value:
                raise InternetError(f"{label} must be printable, without quotes or backslashes")
        if not re.fullmatch(r"[A-Za-z0-9._-]{1,64}", self.name):
            raise InternetError("modem name must be letters, digits, '.', '_' or '-' for dial-up")


def _send(command: str) -> str:
    """A chat(8) send string: chat reads "^X" as Ctrl-X, so a literal ^ (Huawei's AT^ commands) is octal."""
    return "'" + command.replace("^", "\\136") + "'"


def render_chat(s: DialSettings) -> str:
    """A chat(8) script: abort on failures, run the init strings, set the APN, dial."""
    s.validate()
    lines = [
        "# Written by OTP-Pi from Modem Settings; edits are overwritten.",
        "ABORT 'BUSY'", "ABORT 'NO CARRIER'", "ABORT 'NO DIALTONE'", "ABORT 'ERROR'", "ABORT 'NO ANSWER'",
        "TIMEOUT 30",
        "'' 'AT'",
        "OK 'ATE0'",
    ]
    lines += [f"OK {_send(command)}" for command in s.init]
    lines.append(f"OK 'AT+CGDCONT=1,\"IP\",\"{s.apn}\"'")
    lines.append(f"OK {_send(s.dial_command + s.dial_number)}")
    lines.append("CONNECT ''")
    return "\n".join(lines) + "\n"


def render_peer(s: DialSettings, chat_path: Path) -> str:
    """A pppd peer file (pppd(8) options) for ``pppd call``."""
    s.validate()
    lines = [
        "# Written by OTP-Pi from Modem Settings; edits are overwritten.",
        s.port,
        str(int(s.baud_rate)),
        f'connect "/usr/sbin/chat -v -f {chat_path}"',
        "noauth", "defaultroute", "replacedefaultroute", "usepeerdns", "noipdefault", "nodetach",
        "hide-password", "lcp-echo-interval 30", "lcp-echo-failure 4", "novj", "nobsdcomp", "nodeflate",
    ]
    if s.username:
        lines.append(f'user "{s.username}"')
    if s.password:
        lines.append(f'password "{s.password}"')
    return "\n".join(lines) + "\n"


def _exit_reason(proc: subprocess.Popen) -> str:
    """Why pppd stopped: its exit status in words and the first line it printed."""
    output = ""
    if proc.stdout and not proc.stdout.closed:
        os.set_blocking(proc.stdout.fileno(), False)  # a child of pppd may still hold the pipe
        output = (proc.stdout.read() or b"").decode(errors="replace")
    first = next((line.strip() for line in output.splitlines() if line.strip()), "")
    detail = PPPD_EXITS.get(proc.returncode)
    reason = f"pppd exited with {proc.returncode}" + (f" ({detail})" if detail else "")
    return (reason + (f": {first}" if first else ""))[:200]


class Internet:
    """Brings PPP links up and down for modems with Internet Access on."""

    def __init__(self, paths: Paths, pppd: str = "pppd"):
        self.paths = paths
        self.pppd = pppd
        self.links: dict[str, subprocess.Popen] = {}
        self.errors: dict[str, str] = {}
        self._lock = threading.Lock()

    def files(self, name: str) -> tuple[Path, Path]:
        etc = self.paths.etc_dir
        return etc / "ppp/peers" / f"otppi-{name}", etc / "chatscripts" / f"otppi-{name}"

    def write(self, settings: DialSettings) -> tuple[Path, Path]:
        peer, chat = self.files(settings.name)
        atomic_write(chat, render_chat(settings).encode(), mode=0o644)
        atomic_write(peer, render_peer(settings, chat).encode(), mode=0o600)  # it may hold a password
        return peer, chat

    def state(self, name: str) -> str:
        proc = self.links.get(name)
        if proc is None:
            return "failed" if name in self.errors else "down"
        if proc.poll() is None:
            return "up"
        self.errors.setdefault(name, _exit_reason(proc))
        return "failed"

    def handle(self, request: dict[str, Any], worker) -> dict[str, Any]:
        action = request.get("action")
        name = worker.config.name
        if action == "up":
            self.up(name, worker)
        elif action == "down":
            self.down(name, worker)
        elif action != "state":
            raise InternetError("action must be up, down or state")
        return {"state": self.state(name), "error": self.errors.get(name, "")}

    def up(self, name: str, worker) -> None:
        row = Modem.get_or_none(Modem.name == name)
        if row is None or not row.internet_access:
            raise InternetError(f"Internet Access is off for modem {name}")
        peer, _ = self.write(DialSettings.from_row(row))
        binary = shutil.which(self.pppd)
        if binary is None:
            self.errors[name] = "pppd is not installed"
            raise Unsupported(self.errors[name])
        with self._lock:
            if self.state(name) == "up":
                return
            worker.suspend("internet")  # pppd needs the port to itself
            self.errors.pop(name, None)
            # On the device the peer is in /etc/ppp/peers, which `call` reads with pppd's privileges.
            options = ["call", peer.name] if self.paths.root == Path("/") else ["file", str(peer)]
            self.links[name] = subprocess.Popen([binary, *options], stdout=subprocess.PIPE,
                                                stderr=subprocess.STDOUT)
        log.info("%s: PPP link starting (pppd file %s)", name, peer)

    def down(self, name: str, worker) -> None:
        with self._lock:
            proc = self.links.pop(name, None)
        if proc is not None:
            if proc.poll() is None:
                proc.terminate()
                try:
                    proc.wait(10)
                except subprocess.TimeoutExpired:
                    proc.kill()
                    proc.wait()
            if proc.returncode not in (0, 5, -15):  # 5 and -15: stopped by our SIGTERM
                self.errors.setdefault(name, _exit_reason(proc))
            if proc.stdout:
                proc.stdout.close()
        worker.resume()

    def reap(self, workers: dict) -> None:
        """A pppd that ended on its own: record why and give the modem back to SMS."""
        for name, proc in list(self.links.items()):
            if proc.poll() is None:
                continue
            with self._lock:
                self.links.pop(name, None)
            self.errors.setdefault(name, _exit_reason(proc))
            if proc.stdout:
                proc.stdout.close()
            log.warning("%s: PPP link ended: %s", name, self.errors[name])
            worker = workers.get(name)
            if worker is not None:
                worker.resume()

    def stop(self) -> None:
        for name, proc in list(self.links.items()):
            proc.terminate()
            try:
                proc.wait(10)
            except subprocess.TimeoutExpired:
                proc.kill()
            if proc.stdout:
                proc.stdout.close()
        self.links.clear()
