"""A feeder as its own process, the way the feeder tests run it."""

from __future__ import annotations

import signal
import socket
import subprocess
import sys
from pathlib import Path

from ..helpers import env_for


class FeederProcess:
    """``python -m otppi.feeders.<feeder>`` as systemd runs it, with a notify socket to hear READY and STATUS."""

    def __init__(self, root: Path, feeder: str, name: str | None = None, **env: str):
        self.root, self.feeder, self.env = root, feeder, env
        name = name or f"feeder-{feeder}"
        self.log = root / f"{name}.log"
        self.notify_path = root / f"{name}.notify"
        self.notify = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
        self.notify.bind(str(self.notify_path))
        self.proc: subprocess.Popen | None = None
        self.status = ""

    def start(self) -> "FeederProcess":
        env = env_for(self.root, NOTIFY_SOCKET=str(self.notify_path), **self.env)
        with self.log.open("ab") as log:
            self.proc = subprocess.Popen([sys.executable, "-m", f"otppi.feeders.{self.feeder}"], env=env,
                                         stdout=log, stderr=subprocess.STDOUT)
        self.status = self.hear("READY=1")
        return self

    def hear(self, wanted: str, timeout: float = 20) -> str:
        """Block on the process's own datagrams until one contains *wanted*."""
        self.notify.settimeout(timeout)
        while True:
            try:
                message = self.notify.recv(4096).decode()
            except socket.timeout:
                raise AssertionError(f"no {wanted!r} from the feeder: {self.log_text()[-3000:]}") from None
            if wanted in message:
                return message

    def connected(self, timeout: float = 20) -> None:
        self.hear("STATUS=connected to", timeout)

    def running(self) -> bool:
        if self.proc is None or self.proc.poll() is not None:
            raise AssertionError(f"the feeder exited: {self.log_text()[-3000:]}")
        return True

    def log_text(self) -> str:
        return self.log.read_text(errors="replace") if self.log.exists() else ""

    def freeze(self) -> None:
        self.proc.send_signal(signal.SIGSTOP)

    def thaw(self) -> None:
        self.proc.send_signal(signal.SIGCONT)

    def kill(self) -> None:
        self.proc.kill()
        self.proc.wait(10)
        self.proc = None

    def stop(self) -> int:
        """SIGTERM (a frozen process is thawed first); the exit status. It can be started again."""
        if self.proc is None:
            return 0
        self.thaw()
        self.proc.terminate()
        try:
            return self.proc.wait(20)
        finally:
            self.proc = None

    def close(self) -> None:
        self.notify.close()
