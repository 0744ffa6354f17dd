"""``otppi-wsbroker`` as the app-server side runs it: its own process, a users file made by its passwd command."""

from __future__ import annotations

import contextlib
import ssl
import subprocess
import sys
from pathlib import Path
from typing import Iterator

from websockets.headers import build_authorization_basic
from websockets.sync.client import ClientConnection, connect

from .brokers import TestCA
from .helpers import free_port, listening, wait_until

DEVICE_USER, DEVICE_PASSWORD = "otppi-device", "device secret"
APP_USER, APP_PASSWORD = "app-server", "app secret"


def wsbroker(*args: str, stdin: str | None = None) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "otppi.wsbroker", *args], input=stdin, text=True,
                          capture_output=True, timeout=60)


class WsBroker:
    def __init__(self, directory: Path, *, tls: TestCA | None = None, path: str = "/ws", args: tuple[str, ...] = ()):
        self.dir = directory
        self.dir.mkdir(parents=True, exist_ok=True)
        self.host, self.port, self.path = "127.0.0.1", free_port(), path
        self.tls = tls
        self.args = args
        self.users = self.dir / "users"
        self.log = self.dir / "wsbroker.log"
        self.proc: subprocess.Popen | None = None
        for user, password in ((DEVICE_USER, DEVICE_PASSWORD), (APP_USER, APP_PASSWORD)):
            self.add_user(user, password)

    def add_user(self, user: str, password: str) -> None:
        result = wsbroker("passwd", str(self.users), user, "--password-stdin", stdin=password + "\n")
        assert result.returncode == 0, result.stderr

    def start(self) -> "WsBroker":
        command = [sys.executable, "-m", "otppi.wsbroker", "serve", "--host", self.host, "--port", str(self.port),
                   "--path", self.path, "--users", str(self.users)]
        if self.tls is not None:
            command += ["--tls-cert", str(self.tls.cert), "--tls-key", str(self.tls.key)]
        command += list(self.args)
        with self.log.open("ab") as log:
            self.proc = subprocess.Popen(command, stdout=log, stderr=subprocess.STDOUT)
        wait_until(self._up, what=f"otppi-wsbroker on {self.port} ({self.log})")
        return self

    def _up(self) -> bool:
        if self.proc is not None and self.proc.poll() is not None:
            raise AssertionError(f"otppi-wsbroker exited {self.proc.returncode}: {self.log_text()[-2000:]}")
        return listening(self.port)

    def log_text(self) -> str:
        return self.log.read_text(errors="replace") if self.log.exists() else ""

    def stop(self) -> int:
        if self.proc is None:
            return 0
        self.proc.terminate()
        try:
            return self.proc.wait(15)
        finally:
            self.proc = None

    def url(self, topic: str | None, path: str | None = None) -> str:
        scheme = "wss" if self.tls is not None else "ws"
        query = f"?topic={topic}" if topic is not None else ""
        return f"{scheme}://{self.host}:{self.port}{path or self.path}{query}"

    @contextlib.contextmanager
    def client(self, topic: str, user: str = APP_USER, password: str = APP_PASSWORD) -> Iterator[ClientConnection]:
        """A subscriber of *topic*, as the app server (or any WSMessageBroker client) is."""
        headers = {"Authorization": build_authorization_basic(user, password)}
        context = ssl.create_default_context(cafile=str(self.tls.ca)) if self.tls is not None else None
        with connect(self.url(topic), additional_headers=headers, ssl=context, open_timeout=10,
                     proxy=None) as ws:
            yield ws
