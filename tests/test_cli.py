"""The ``otppi`` command line, run as operators run it: one clear line, non-zero on error."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from .helpers import otppi


@pytest.fixture
def root(short_tmp: Path) -> Path:
    result = otppi(short_tmp, "migrate")
    assert result.stdout.startswith("schema migrated from version 0 to")
    return short_tmp


def fails(root: Path, *args: str, stdin: str | None = None) -> str:
    result = otppi(root, *args, stdin=stdin, check=False)
    assert result.returncode != 0, result.stdout
    assert result.stderr.count("\n") == 1 and result.stderr.startswith("otppi: "), result.stderr
    return result.stderr


def test_commands_need_a_migrated_store(short_tmp: Path) -> None:
    assert "otppi migrate" in fails(short_tmp, "block", "list")


def test_migrate_twice(root: Path) -> None:
    assert otppi(root, "migrate").stdout.startswith("schema is up to date")
    assert oct((root / "var/lib/otppi/secrets/otp.key").stat().st_mode & 0o777) == "0o600"


def test_the_setup_code_is_made_by_migrate_printed_and_gone_once_an_administrator_exists(root: Path) -> None:
    path = root / "var/lib/otppi/secrets/setup.code"
    code = otppi(root, "setup-code").stdout.strip()
    assert code == path.read_text().strip() and len(code) == 14
    assert oct(path.stat().st_mode & 0o777) == "0o600"
    otppi(root, "migrate")
    assert otppi(root, "setup-code").stdout.strip() == code, "never regenerated while present"
    otppi(root, "admin", "add", "root", "--password-stdin", stdin="s3cret pass\n")
    assert not path.exists()
    assert "an administrator exists" in fails(root, "setup-code")
    otppi(root, "migrate")
    assert not path.exists()


def test_the_database_is_shared_with_the_group(root: Path) -> None:
    """The admin web runs as its own user in group otppi: it must write the store (and its -wal/-shm)."""
    database = root / "var/lib/otppi/otppi.db"
    assert database.stat().st_mode & 0o660 == 0o660
    assert (root / "var/lib/otppi").stat().st_mode & 0o070 == 0o070


def test_admin_and_api_user(root: Path) -> None:
    assert otppi(root, "admin", "add", "root", "--password-stdin", "--email", "ops@example.com",
                 stdin="s3cret\n").stdout == "administrator 'root' added\n"
    assert "already exists" in fails(root, "admin", "add", "root", "--password-stdin", stdin="x\n")
    assert "--password-stdin" in fails(root, "admin", "add", "other")
    assert "empty" in fails(root, "api-user", "add", "app", "--password-stdin", stdin="\n")
    otppi(root, "api-user", "add", "app", "--password-stdin", stdin="pw\n")
    otppi(root, "api-user", "add", "ops", "--password-stdin", "--allow-ussd", stdin="pw\n")
    assert otppi(root, "api-user", "list").stdout == "app\tactive\tno USSD\nops\tactive\tUSSD allowed\n"
    assert otppi(root, "api-user", "set", "app", "--allow-ussd").stdout == "API user 'app' may use request-ussd\n"
    assert otppi(root, "api-user", "set", "ops", "--no-allow-ussd").stdout == (
        "API user 'ops' may not use request-ussd\n")
    assert otppi(root, "api-user", "list").stdout == "app\tactive\tUSSD allowed\nops\tactive\tno USSD\n"
    assert "no API user named 'nobody'" in fails(root, "api-user", "set", "nobody", "--allow-ussd")
    assert "--allow-ussd" in fails(root, "api-user", "set", "app")
    db = (root / "var/lib/otppi/otppi.db").read_bytes()
    assert b"s3cret" not in db and b"$argon2id$" in db


def test_settings(root: Path) -> None:
    assert otppi(root, "settings", "set", "sms.country_code", "62").stdout == "sms.country_code = 62\n"
    assert otppi(root, "settings", "set", "sms.prefix_length", "5").stdout == "sms.prefix_length = 5\n"
    assert otppi(root, "settings", "set", "api.http_port", "8081").stdout == "api.http_port = 8081\n"
    assert otppi(root, "settings", "get", "api.http_port").stdout == "8081\n"
    assert "1 to 65535" in fails(root, "settings", "set", "api.http_port", "70000")
    assert "unknown setting" in fails(root, "settings", "get", "api.nope")
    otppi(root, "settings", "set", "feeder_mqtt.password", "hunter2")
    assert otppi(root, "settings", "get", "feeder_mqtt.password").stdout == "(set)\n"
    listing = otppi(root, "settings", "list").stdout
    assert "hunter2" not in listing
    assert "general.otp_expiration = 300000" in listing and "dhcp.ranges = " in listing


def test_block_list(root: Path) -> None:
    assert otppi(root, "block", "add", "08126666666").stdout == "628126666666 blocked\n"
    otppi(root, "block", "add", "+62 812 6666 666")  # the same number: no duplicate
    assert otppi(root, "block", "list").stdout == "628126666666\n"
    assert "not a phone number" in fails(root, "block", "add", "'; drop table x")
    otppi(root, "block", "remove", "08126666666")
    assert "not on the block list" in fails(root, "block", "remove", "08126666666")
    assert otppi(root, "block", "list").stdout == "the block list is empty\n"


def test_modem_records(root: Path) -> None:
    otppi(root, "modem", "add", "m1", "--port", "/dev/ttyUSB0", "--prefix", "0871", "--prefix", "62872")
    otppi(root, "modem", "add", "m4", "--port", "/dev/ttyUSB3", "--default", "--no-api", "--inactive",
          "--baud", "9600")
    modems = json.loads(otppi(root, "modem", "list", "--json").stdout)
    assert modems[0] == {"name": "m1", "port": "/dev/ttyUSB0", "prefixes": ["62871", "62872"], "default": False,
                         "send_from_api": True, "active": True, "baud_rate": 115200}
    assert modems[1]["default"] and not modems[1]["send_from_api"] and not modems[1]["active"]
    assert otppi(root, "modem", "list").stdout.splitlines()[1].startswith("m4\t/dev/ttyUSB3")
    assert "already exists" in fails(root, "modem", "add", "m1", "--port", "/dev/ttyUSB9")
    assert "baud" in fails(root, "modem", "add", "m2", "--port", "/dev/ttyUSB1", "--baud", "1234")
    assert "digits" in fails(root, "modem", "add", "m2", "--port", "/dev/ttyUSB1", "--prefix", "62a")
    otppi(root, "modem", "remove", "m1")
    assert "no modem" in fails(root, "modem", "remove", "m1")


def test_help_names_every_command(root: Path) -> None:
    text = otppi(root, "--help").stdout
    for word in ("migrate", "admin", "api-user", "settings", "block", "modem"):
        assert word in text


def test_modem_fields_are_editable_and_validated(root: Path) -> None:
    otppi(root, "modem", "add", "m1", "--port", "/dev/ttyUSB0")
    assert otppi(root, "modem", "set", "m1", "sim_pin", "1234").stdout == "modem 'm1': sim_pin = (set)\n"
    assert otppi(root, "modem", "set", "m1", "parity", "even").stdout == "modem 'm1': parity = E\n"
    assert otppi(root, "modem", "set", "m1", "prefixes", "0871, 0872").stdout == "modem 'm1': prefixes = 62871,62872\n"
    otppi(root, "modem", "set", "m1", "init_dial_1", 'AT+CGDCONT=1,"IP","internet"')
    shown = otppi(root, "modem", "show", "m1").stdout
    assert "sim_pin = (set)" in shown and "1234" not in shown and "parity = E" in shown
    for field, value, why in [("sim_pin", "12", "4 to 8 digits"), ("baud_rate", "1234", "one of"),
                              ("start_bits", "2", "one of 1"), ("apn", "in\"ternet", "letters"),
                              ("init_dial_2", "rm -rf /", "AT command"), ("imei", "1", "not an editable"),
                              ("port", "ttyUSB0", "device path"), ("stop_bits", "3", "one of")]:
        assert why in fails(root, "modem", "set", "m1", field, value), field
    assert "no modem named" in fails(root, "modem", "set", "nope", "active", "false")
    assert "a modem name" in fails(root, "modem", "add", "bad name", "--port", "/dev/ttyUSB1")


def test_secret_settings_from_stdin(root: Path) -> None:
    assert otppi(root, "settings", "set", "feeder_amqp.password", "--value-stdin",
                 stdin="s3cr3t\n").stdout == "feeder_amqp.password = (set)\n"
    assert "either as an argument or with --value-stdin" in fails(root, "settings", "set", "feeder_amqp.password")
