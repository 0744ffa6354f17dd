"""Small helpers the tests share: free ports, a throwaway root, running the real CLI and components."""

from __future__ import annotations

import os
import socket
import sqlite3
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import requests

ROOT_OF_REPO = Path(__file__).resolve().parent.parent


def short_root(prefix: str = "op") -> Path:
    """A root whose socket paths fit AF_UNIX's 108 bytes (pytest's tmp paths can be too long)."""
    return Path(tempfile.mkdtemp(prefix=prefix, dir="/tmp"))


def listening(port: int, host: str = "127.0.0.1") -> bool:
    """Whether something accepts connections on *port* (another process: nothing else to wait on)."""
    try:
        with socket.create_connection((host, port), timeout=0.5):
            return True
    except OSError:
        return False


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def env_for(root: Path, **extra: str) -> dict[str, str]:
    env = dict(os.environ, OTPPI_ROOT=str(root), PYTHONUNBUFFERED="1")
    env.pop("NOTIFY_SOCKET", None)
    env.update(extra)
    return env


def otppi(root: Path, *args: str, stdin: str | None = None, check: bool = True) -> subprocess.CompletedProcess:
    """Run the real ``otppi`` command line against *root*."""
    result = subprocess.run(
        [sys.executable, "-m", "otppi.cli", *args], env=env_for(root), input=stdin, text=True,
        capture_output=True, timeout=60,
    )
    if check and result.returncode != 0:
        raise AssertionError(f"otppi {' '.join(args)} failed: {result.stderr}")
    return result


def store_bytes(database: Path) -> bytes:
    """Every byte the store keeps on disk: the database file, its WAL and its shared-memory index."""
    files = [database, database.with_name(database.name + "-wal"), database.with_name(database.name + "-shm")]
    return b"".join(f.read_bytes() for f in files if f.exists())


def stored_secret(root: Path, table: str, column: str, where: str, *args) -> str:
    """A secret as the database file holds it, checked sealed, then opened with the device key of *root*."""
    from otppi.seal import unseal
    from otppi.store.sealed import column_key

    con = sqlite3.connect(root / "var/lib/otppi/otppi.db", timeout=15)
    try:
        (raw,), = con.execute(f"select {column} from {table} where {where}", args).fetchall()
    finally:
        con.close()
    if raw == "":
        return ""
    assert raw.startswith("s1:"), f"{table}.{column} is stored in clear"
    key = (root / "var/lib/otppi/secrets/otp.key").read_bytes()
    return unseal(column_key(key, table, column), raw)


def wait_until(predicate, timeout: float = 15.0, interval: float = 0.05, what: str = "condition"):
    """Poll *predicate* (an outside process we cannot get an event from) until it is truthy."""
    deadline = time.monotonic() + timeout
    while True:
        value = predicate()
        if value:
            return value
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for {what}")
        time.sleep(interval)


class ApiProcess:
    """The api component as systemd would run it: its own process, real sockets."""

    def __init__(self, root: Path, port: int, user: str, password: str):
        self.root, self.port, self.user, self.password = root, port, user, password
        self.url = f"http://127.0.0.1:{port}"
        self.log = root / "api.log"
        self.proc: subprocess.Popen | None = None

    def start(self) -> "ApiProcess":
        with self.log.open("ab") as log:
            self.proc = subprocess.Popen(
                [sys.executable, "-m", "otppi.api"], env=env_for(self.root), stdout=log, stderr=subprocess.STDOUT,
            )
        wait_until(self.alive, what=f"api on port {self.port} ({self.log})")
        return self

    def alive(self) -> bool:
        if self.proc is not None and self.proc.poll() is not None:
            raise AssertionError(f"api exited with {self.proc.returncode}: {self.log.read_text()[-2000:]}")
        try:
            requests.post(self.url + "/api/otp", timeout=1)
            return True
        except requests.ConnectionError:
            return False

    def post(self, path: str, body, *, auth=None, **kwargs) -> requests.Response:
        auth = (self.user, self.password) if auth is None else auth
        if isinstance(body, (dict, list)):
            return requests.post(self.url + path, json=body, auth=auth or None, timeout=30, **kwargs)
        return requests.post(self.url + path, data=body, auth=auth or None, timeout=30,
                             headers={"Content-Type": "application/json"}, **kwargs)

    def stop(self) -> int:
        if self.proc is None:
            return 0
        self.proc.terminate()
        try:
            return self.proc.wait(10)
        finally:
            self.proc = None
