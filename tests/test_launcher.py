"""Units and the local launcher: ``./build.sh run`` starts what the device starts."""

from __future__ import annotations

import signal
import subprocess
import sys
from pathlib import Path

import pytest
import requests

from otppi.launcher import DEMO_PASSWORD, DEMO_USER
from otppi.units import local_command, parse_unit, target_units

from .helpers import ROOT_OF_REPO, env_for, free_port, otppi, wait_until

UNITS = ROOT_OF_REPO / "units"


def test_target_wants_every_unit_file_and_migrate_comes_first() -> None:
    files = {p.name for p in UNITS.glob("*.service")}
    units = target_units(UNITS)
    assert {u.name for u in units} == files
    assert units[0].name == "otppi-migrate.service" and units[0].type == "oneshot"


def test_long_running_units_are_notify_with_watchdog_and_restart() -> None:
    for unit in target_units(UNITS):
        if unit.type == "oneshot":
            continue
        assert unit.type == "notify", unit.name
        assert unit.get("Service", "WatchdogSec"), unit.name
        assert unit.get("Service", "Restart") == "on-failure", unit.name
        assert unit.get("Service", "User") == ("otppi-admin" if unit.name == "otppi-admin.service" else "otppi")
        assert unit.get("Service", "MemoryMax"), unit.name
        assert "otppi-migrate.service" in unit.get_all("Unit", "After"), unit.name


def test_every_unit_shares_the_store_and_sockets_with_the_group() -> None:
    """The admin web runs as its own user in group otppi: files, sockets and the database must let it in."""
    for unit in target_units(UNITS):
        assert unit.get("Service", "Group") == "otppi", unit.name
        assert unit.get("Service", "UMask") == "0007", unit.name
    migrate = parse_unit(UNITS / "otppi-migrate.service")
    assert migrate.get("Service", "StateDirectoryMode") == "0770"  # SQLite makes -wal/-shm beside the database
    assert migrate.get("Service", "RuntimeDirectory") == "otppi"  # made before the admin web starts


def test_the_admin_web_gets_its_keys_from_systemd_and_never_the_secrets_folder() -> None:
    admin = parse_unit(UNITS / "otppi-admin.service")
    assert not admin.get("Service", "RuntimeDirectory"), "systemd would chown /run/otppi to otppi-admin"
    assert sorted(admin.options[("Service", "LoadCredential")]) == [
        "otp.key:/var/lib/otppi/secrets/otp.key", "session.key:/var/lib/otppi/secrets/session.key"]
    assert admin.get("Service", "InaccessiblePaths") == "/var/lib/otppi/secrets"


def test_exec_start_maps_to_this_interpreter() -> None:
    api = parse_unit(UNITS / "otppi-api.service")
    assert local_command(api, "/py") == ["/py", "-m", "otppi.api"]
    migrate = parse_unit(UNITS / "otppi-migrate.service")
    assert local_command(migrate, "/py") == ["/py", "-m", "otppi.cli", "migrate"]


def test_launcher_runs_the_appliance_and_ctrl_c_stops_it(short_tmp: Path) -> None:
    root = short_tmp / "var"
    otppi(root, "migrate")
    port = free_port()
    otppi(root, "settings", "set", "api.http_port", str(port))
    proc = subprocess.Popen([sys.executable, "-m", "otppi.launcher", "--root", str(root), "--units", str(UNITS)],
                            env=env_for(root), stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
                            cwd=ROOT_OF_REPO)
    try:
        def echo():
            try:
                return requests.post(f"http://127.0.0.1:{port}/api/sms", json={"command": "echo", "data": {"k": 1}},
                                     auth=(DEMO_USER, DEMO_PASSWORD), timeout=2)
            except requests.ConnectionError:
                return None

        r = wait_until(echo, timeout=30, what="the launched api")
        assert r.json()["data"] == {"k": 1}
        assert otppi(root, "settings", "get", "api.bind_address").stdout.strip() == "127.0.0.1"
        proc.send_signal(signal.SIGINT)
        out, _ = proc.communicate(timeout=30)
    finally:
        if proc.poll() is None:
            proc.kill()
    assert proc.returncode == 0
    assert f"http://127.0.0.1:{port}/api/otp" in out
    code = otppi(root, "setup-code").stdout.strip()
    assert f"create the administrator with setup code {code}" in out
    assert "every component stopped" in out
    with pytest.raises(requests.ConnectionError):
        requests.post(f"http://127.0.0.1:{port}/api/sms", timeout=2)  # nothing left listening
