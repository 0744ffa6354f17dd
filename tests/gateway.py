"""A whole gateway for end-to-end tests: simulated modems, the modem component, the api.

The simulator runs in the test process (threads serving ptys); the
components run as their own processes, as systemd runs them, and open the
ptys through real pyserial.
"""

from __future__ import annotations

import json
import sqlite3
import subprocess
import sys
from pathlib import Path
from typing import Any

from otppi import control
from otppi.modem.simulator import Simulator
from otppi.paths import Paths

from .helpers import ApiProcess, env_for, free_port, otppi, wait_until

API_USER, API_PASSWORD = "app-server", "correct horse battery staple"


class Gateway:
    def __init__(self, base: Path, count: int = 2, profiles=None, network_delay: float = 0.0, **sim_kwargs: Any):
        self.root = base / "g"
        self.sim_dir = base / "s"
        self.sim_dir.mkdir(parents=True)
        self.paths = Paths(self.root)
        otppi(self.root, "migrate")
        otppi(self.root, "api-user", "add", API_USER, "--password-stdin", stdin=API_PASSWORD + "\n")
        for key, value in (("api.bind_address", "127.0.0.1"), ("api.http_port", str(free_port())),
                           ("api.wait_timeout", "10"), ("sms.send_timeout", "5")):
            otppi(self.root, "settings", "set", key, value)
        self.sim = Simulator(count=count, profiles=profiles, directory=str(self.sim_dir),
                             network_delay=network_delay, **sim_kwargs)
        self.sim.__enter__()
        self.modem_proc: subprocess.Popen | None = None
        self.api: ApiProcess | None = None
        self.log = self.root / "modem.log"

    # ---------------------------------------------------------------- set-up

    def port(self, index: int) -> str:
        return str(self.sim_dir / f"modem{index}")

    def add_modem(self, name: str, index: int, *args: str) -> None:
        otppi(self.root, "modem", "add", name, "--port", self.port(index), *args)

    def cli(self, *args: str, **kwargs):
        return otppi(self.root, *args, **kwargs)

    def start_modem(self, wait_for: list[str] | None = None) -> "Gateway":
        with self.log.open("ab") as log:
            self.modem_proc = subprocess.Popen([sys.executable, "-m", "otppi.modem"], env=env_for(self.root),
                                               stdout=log, stderr=subprocess.STDOUT)
        if wait_for:
            self.wait_states({name: "ready" for name in wait_for})
        return self

    def start_api(self) -> ApiProcess:
        port = int(otppi(self.root, "settings", "get", "api.http_port").stdout)
        self.api = ApiProcess(self.root, port, API_USER, API_PASSWORD).start()
        return self.api

    def stop_modem(self) -> int:
        if self.modem_proc is None:
            return 0
        self.modem_proc.terminate()
        try:
            return self.modem_proc.wait(20)
        finally:
            self.modem_proc = None

    def kill_modem(self) -> None:
        self.modem_proc.kill()
        self.modem_proc.wait(10)
        self.modem_proc = None

    def close(self) -> None:
        codes = [self.stop_modem()]
        if self.api is not None:
            codes.append(self.api.stop())
        self.sim.__exit__(None, None, None)
        assert codes == [0] * len(codes), f"components must stop cleanly: {codes}; {self.log_text()[-3000:]}"

    # ---------------------------------------------------------------- looking

    def log_text(self) -> str:
        return self.log.read_text(errors="replace") if self.log.exists() else ""

    def control(self, request: dict[str, Any], timeout: float = 30.0) -> dict[str, Any]:
        return control.call(self.paths, request, timeout)

    def states(self) -> dict[str, str]:
        if self.modem_proc is not None and self.modem_proc.poll() is not None:
            raise AssertionError(f"modem component exited {self.modem_proc.returncode}: {self.log_text()[-3000:]}")
        answer = self.control({"op": "status"}, timeout=5)
        return {m["name"]: m["state"] for m in answer.get("modems", [])} if answer.get("ok") else {}

    def wait_states(self, wanted: dict[str, str], timeout: float = 20.0) -> None:
        wait_until(lambda: all(self.states().get(k) == v for k, v in wanted.items()), timeout=timeout,
                   what=f"modem states {wanted} (have {self.states() if self.modem_proc else '-'})")

    def rows(self, sql: str, *args: Any) -> list[tuple]:
        con = sqlite3.connect(self.paths.database, timeout=15)
        try:
            return con.execute(sql, args).fetchall()
        finally:
            con.close()

    def rest(self, command: str, **data: Any) -> dict[str, Any]:
        assert self.api is not None
        return self.api.post("/api/sms", {"command": command, "data": data}).json()

    def sent(self, index: int) -> list:
        return self.sim[index].sent.messages()

    def dumps(self) -> str:
        return json.dumps(self.sim.describe(), default=str)
