"""A throwaway appliance for the benchmark: a temp root provisioned with the real CLI, the real api process.

Nothing here reaches past loopback. The root is deleted and the api process
killed when the context ends, whatever happened inside it.
"""

from __future__ import annotations

import os
import shutil
import socket
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path
from typing import Callable, TypeVar

T = TypeVar("T")

USER = "bench"
PASSWORD = "bench password, loopback only"
START_TIMEOUT_S = 30.0


def memory_max_mib(unit: str) -> int:
    """The MemoryMax (in MiB, written as ``NNNM``) of one of the project's units, e.g. ``otppi-api``."""
    path = Path(__file__).resolve().parent.parent / "units" / f"{unit}.service"
    for line in path.read_text().splitlines():
        if line.startswith("MemoryMax=") and line.endswith("M"):
            return int(line[len("MemoryMax="):-1])
    raise ValueError(f"{path} sets no MemoryMax in MiB")


def at_once(calls: list[Callable[[], T]]) -> list[T]:
    """Run every call at the same moment, each on a thread of its own; their results, in order."""
    start = threading.Barrier(len(calls))
    results: list = [None] * len(calls)

    def go(i: int) -> None:
        start.wait()
        results[i] = calls[i]()

    threads = [threading.Thread(target=go, args=(i,)) for i in range(len(calls))]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    return results


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


class Appliance:
    """``with Appliance() as app:`` provisions a root, starts ``python -m otppi.api``, and tears both down."""

    def __init__(self) -> None:
        # Short path: the doorbell sockets live under the root and AF_UNIX paths are limited to 108 bytes.
        self.root = Path(tempfile.mkdtemp(prefix="otppi-bench-"))
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.log = self.root / "api.log"
        self.proc: subprocess.Popen | None = None

    # ---------------------------------------------------------------- set-up

    def env(self) -> dict[str, str]:
        env = dict(os.environ, OTPPI_ROOT=str(self.root), PYTHONUNBUFFERED="1")
        env.pop("NOTIFY_SOCKET", None)  # not a systemd service here
        return env

    def cli(self, *args: str, stdin: str | None = None) -> str:
        result = subprocess.run([sys.executable, "-m", "otppi.cli", *args], env=self.env(), input=stdin,
                                text=True, capture_output=True, timeout=60)
        if result.returncode != 0:
            raise RuntimeError(f"otppi {' '.join(args)} failed: {result.stderr.strip()}")
        return result.stdout.strip()

    def provision(self) -> None:
        self.cli("migrate")
        self.cli("api-user", "add", USER, "--password-stdin", stdin=PASSWORD + "\n")
        self.cli("settings", "set", "api.bind_address", "127.0.0.1")
        self.cli("settings", "set", "api.http_port", str(self.port))
        # 0: create-otp answers 1111 (queued) at once instead of waiting for a modem.
        self.cli("settings", "set", "api.wait_timeout", "0")

    def start(self) -> None:
        with self.log.open("ab") as log:
            self.proc = subprocess.Popen([sys.executable, "-m", "otppi.api"], env=self.env(),
                                         stdout=log, stderr=subprocess.STDOUT)
        deadline = time.monotonic() + START_TIMEOUT_S
        while not self._listening():
            if self.proc.poll() is not None:
                raise RuntimeError(f"api exited with {self.proc.returncode}: {self.log.read_text()[-2000:]}")
            if time.monotonic() > deadline:
                raise RuntimeError(f"api did not listen on port {self.port} within {START_TIMEOUT_S:.0f} s")
            time.sleep(0.05)  # another process: nothing to wait on but its port

    def _listening(self) -> bool:
        try:
            socket.create_connection(("127.0.0.1", self.port), timeout=0.5).close()
            return True
        except OSError:
            return False

    # ---------------------------------------------------------------- measuring the server

    @property
    def pid(self) -> int:
        assert self.proc is not None
        return self.proc.pid

    def status(self, field: str) -> int:
        """A number field of /proc/<pid>/status: VmHWM (peak resident set, in KiB), Threads."""
        for line in Path(f"/proc/{self.pid}/status").read_text().splitlines():
            if line.startswith(field + ":"):
                return int(line.split()[1])
        raise KeyError(field)

    def cpu_seconds(self) -> float:
        """User plus system CPU the api process has used so far."""
        fields = Path(f"/proc/{self.pid}/stat").read_text().rpartition(")")[2].split()
        return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")

    # ---------------------------------------------------------------- tear-down

    def stop(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(10)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(5)
        self.proc = None

    def __enter__(self) -> "Appliance":
        try:
            self.provision()
            self.start()
        except BaseException:
            self.__exit__(None, None, None)
            raise
        return self

    def __exit__(self, *exc: object) -> None:
        try:
            self.stop()
        finally:
            shutil.rmtree(self.root, ignore_errors=True)
