"""The local launcher behind ``./build.sh run``: the whole appliance, unprivileged.

It reads ``units/otppi.target`` and the units it wants, so the dev run starts
exactly the components the device starts, with the same commands: oneshots
first, to completion, then every long-running component. A component that
fails is restarted like ``Restart=on-failure`` would; Ctrl-C stops them all.
"""

from __future__ import annotations

import argparse
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

from .units import Unit, local_command, target_units

DEMO_USER = "demo"
DEMO_PASSWORD = "demo-password"


class Child:
    def __init__(self, unit: Unit, argv: list[str], env: dict[str, str]):
        self.unit, self.argv, self.env = unit, argv, env
        self.proc: subprocess.Popen | None = None

    @property
    def name(self) -> str:
        return self.unit.name.removesuffix(".service").removeprefix("otppi-")

    def start(self) -> None:
        self.proc = subprocess.Popen(self.argv, env=self.env)

    def stop(self, grace: float) -> None:
        if self.proc and self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(grace)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()


def _env(root: Path, unit: Unit) -> dict[str, str]:
    env = dict(os.environ)
    env.update(unit.environment)
    env["OTPPI_ROOT"] = str(root)
    env["PYTHONUNBUFFERED"] = "1"
    env.pop("NOTIFY_SOCKET", None)
    return env


def _cli(root: Path, *args: str, stdin: str | None = None) -> subprocess.CompletedProcess:
    env = dict(os.environ, OTPPI_ROOT=str(root))
    return subprocess.run([sys.executable, "-m", "otppi.cli", *args], env=env, input=stdin, text=True,
                          capture_output=True)


def provision_dev_root(root: Path) -> None:
    """First dev run only: listen on loopback and create the demo API user."""
    if _cli(root, "api-user", "list").stdout.strip() != "no API users":
        return
    _cli(root, "settings", "set", "api.bind_address", "127.0.0.1")
    _cli(root, "settings", "set", "admin.bind_address", "127.0.0.1")
    _cli(root, "api-user", "add", DEMO_USER, "--password-stdin", stdin=DEMO_PASSWORD + "\n")


def start_simulator(root: Path, count: int) -> subprocess.Popen | None:
    """Simulated modems on ptys, registered as sim0..simN-1 (sim0 the default modem)."""
    if count <= 0:
        return None
    directory = root / "run/sim"
    directory.mkdir(parents=True, exist_ok=True)
    env = dict(os.environ, PYTHONUNBUFFERED="1")
    proc = subprocess.Popen([sys.executable, "-m", "otppi.modem.simulator", "--count", str(count),
                             "--dir", str(directory)], env=env, stdout=subprocess.PIPE, text=True)
    for _ in range(count):
        line = proc.stdout.readline()
        if not line:
            raise RuntimeError("the modem simulator did not start")
        print(f"simulator: {line.strip()}", flush=True)
    existing = _cli(root, "modem", "list").stdout
    for i in range(count):
        name = f"sim{i}"
        if not any(row.split("\t")[0] == name for row in existing.splitlines()):
            extra = ["--default"] if i == 0 else []
            _cli(root, "modem", "add", name, "--port", str(directory / f"modem{i}"), *extra)
    return proc


def run(root: Path, units_dir: Path, restart_delay: float = 2.0, sim_modems: int = 0) -> int:
    root.mkdir(parents=True, exist_ok=True)
    units = target_units(units_dir)
    children: list[Child] = []
    simulator: subprocess.Popen | None = None
    for unit in units:
        argv = local_command(unit, sys.executable)
        if unit.type == "oneshot":
            result = subprocess.run(argv, env=_env(root, unit))
            if result.returncode != 0:
                print(f"launcher: {unit.name} failed with status {result.returncode}", file=sys.stderr)
                return result.returncode
            if unit.name == "otppi-migrate.service":
                provision_dev_root(root)
                simulator = start_simulator(root, sim_modems)
            continue
        children.append(Child(unit, argv, _env(root, unit)))

    stopping = False

    def on_signal(signum: int, frame: object) -> None:
        nonlocal stopping
        stopping = True

    signal.signal(signal.SIGINT, on_signal)
    signal.signal(signal.SIGTERM, on_signal)
    for child in children:
        child.start()
    api_port = _cli(root, "settings", "get", "api.http_port").stdout.strip()
    admin_port = _cli(root, "settings", "get", "admin.port").stdout.strip()
    code = _cli(root, "setup-code")
    first = (f"first visit: create the administrator with setup code {code.stdout.strip()}" if code.returncode == 0
             else "log in")
    print(
        f"\nOTP-Pi is running from {root}\n"
        f"  admin web: http://127.0.0.1:{admin_port}/   ({first})\n"
        f"  REST API:  http://127.0.0.1:{api_port}/api/otp   (user {DEMO_USER}, password {DEMO_PASSWORD})\n"
        f"  try:       curl -u {DEMO_USER}:{DEMO_PASSWORD} -d '{{\"command\":\"echo\",\"data\":{{}}}}' "
        f"http://127.0.0.1:{api_port}/api/sms\n"
        f"  modems:    {sim_modems} simulated (OTPPI_SIM_MODEMS=N to change); "
        f"inject SMS with python -m otppi.modem.simulator's control socket {root}/run/sim/control.sock\n"
        f"  CLI:       OTPPI_ROOT={root} .venv/bin/otppi --help\n"
        f"  Ctrl-C stops every component.\n",
        flush=True,
    )
    try:
        while not stopping:
            time.sleep(0.2)
            for child in children:
                code = child.proc.poll() if child.proc else None
                if code is None or stopping:
                    continue
                if code == 0:  # Restart=on-failure: a clean exit stays down
                    print(f"launcher: {child.name} exited cleanly", file=sys.stderr, flush=True)
                    child.proc = None
                    continue
                print(f"launcher: {child.name} exited with status {code}; restarting in {restart_delay:g}s",
                      file=sys.stderr, flush=True)
                time.sleep(restart_delay)
                child.start()
    finally:
        for child in reversed(children):
            child.stop(grace=10)
        if simulator is not None:
            simulator.terminate()
            simulator.wait(10)
            simulator.stdout.close()
        print("launcher: every component stopped", flush=True)
    return 0


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m otppi.launcher", description=__doc__.splitlines()[0])
    parser.add_argument("--root", type=Path, default=Path("var"), help="throwaway OTPPI_ROOT (default ./var)")
    parser.add_argument("--units", type=Path, default=Path("units"), help="folder of unit files (default ./units)")
    parser.add_argument("--sim-modems", type=int, default=int(os.environ.get("OTPPI_SIM_MODEMS", "2")),
                        help="simulated modems to start and register (default $OTPPI_SIM_MODEMS or 2; 0: none)")
    args = parser.parse_args(argv)
    return run(args.root.absolute(), args.units, sim_modems=args.sim_modems)


if __name__ == "__main__":
    sys.exit(main())
