"""``otppi email-account`` and ``otppi email send``: the real CLI, one clear line, never a password shown."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from ..helpers import otppi


@pytest.fixture
def root(short_tmp: Path) -> Path:
    otppi(short_tmp, "migrate")
    return short_tmp


def fails(root: Path, *args: str, stdin: str | None = None) -> str:
    result = otppi(root, *args, stdin=stdin, check=False)
    assert result.returncode == 1, result.stdout
    assert result.stdout == "" and result.stderr.count("\n") == 1 and result.stderr.startswith("otppi: "), \
        result.stderr
    return result.stderr


def accounts(root: Path) -> list[dict]:
    return json.loads(otppi(root, "email-account", "list", "--json").stdout)


def test_add_list_set_remove(root: Path) -> None:
    assert otppi(root, "email-account", "list").stdout == "no email accounts\n"
    out = otppi(root, "email-account", "add", "OTP@Example.com", "--host", "smtp.gmail.com", "--password-stdin",
                stdin="app password 1\n").stdout
    assert out == "email account 1 'otp@example.com' added (smtp.gmail.com:587, starttls)\n"
    otppi(root, "email-account", "add", "otp2@example.com", "--host", "smtp.gmail.com", "--ssl", "--starttls",
          "--quota", "500", "--password-stdin", stdin="app password 2\n")
    otppi(root, "email-account", "add", "relay@example.com", "--host", "10.0.0.5", "--port", "25", "--no-starttls",
          "--no-auth", "--inactive")
    listed = accounts(root)
    assert [(a["id"], a["sender"], a["port"], a["ssl"], a["starttls"], a["authentication"], a["password_set"],
             a["daily_quota"], a["active"]) for a in listed] == [
        (1, "otp@example.com", 587, False, True, True, True, 0, True),
        (2, "otp2@example.com", 465, True, False, True, True, 500, True),  # STARTTLS means nothing inside TLS
        (3, "relay@example.com", 25, False, False, False, False, 0, False)]
    text = otppi(root, "email-account", "list").stdout
    assert text.splitlines()[1] == ("2\totp2@example.com\tsmtp.gmail.com:465\tssl\tauth\tquota=500\tsent_today=0"
                                    "\tactive")
    for shown in (text, json.dumps(listed), otppi(root, "settings", "list").stdout):
        assert "app password" not in shown
    assert otppi(root, "email-account", "set", "otp@example.com", "daily_quota", "100").stdout == \
        "email account 'otp@example.com': daily_quota = 100\n"
    assert otppi(root, "email-account", "set", "3", "active", "yes").stdout == "email account '3': active = true\n"
    otppi(root, "email-account", "password", "2", "--password-stdin", stdin="new one\n")
    assert otppi(root, "email-account", "remove", "relay@example.com").stdout == \
        "email account 3 'relay@example.com' removed\n"
    assert [a["id"] for a in accounts(root)] == [1, 2]


def test_fields_are_validated(root: Path) -> None:
    otppi(root, "email-account", "add", "otp@example.com", "--host", "smtp.example.com", "--password-stdin",
          stdin="pw\n")
    for field, value, why in [("smtp_port", "70000", "port number"), ("smtp_port", "x", "whole number"),
                              ("smtp_host", "bad host!", "host name"), ("daily_quota", "-1", "from 0"),
                              ("ssl", "maybe", "true or false"), ("ca_file", "relative.pem", "absolute path"),
                              ("sender_account", "not an address", "plain email address"),
                              ("sent_today", "0", "not an editable"), ("quota_day", "x", "not an editable"),
                              ("smtp_host", "a\r\nb", "control characters"),
                              ("sender_password", "x", "password ID --password-stdin")]:
        assert why in fails(root, "email-account", "set", "1", field, value), field
    assert "no email account '9'" in fails(root, "email-account", "set", "9", "active", "false")
    assert "already exists" in fails(root, "email-account", "add", "otp@example.com", "--host", "h",
                                     "--password-stdin", stdin="pw\n")
    assert "--password-stdin" in fails(root, "email-account", "add", "x@example.com", "--host", "h")
    assert "empty" in fails(root, "email-account", "add", "x@example.com", "--host", "h", "--password-stdin",
                            stdin="\n")
    assert "plain email address" in fails(root, "email-account", "add", "x,y@example.com", "--host", "h",
                                          "--no-auth")
    otppi(root, "email-account", "add", "two@example.com", "--host", "h", "--no-auth")
    assert "already exists" in fails(root, "email-account", "set", "2", "sender_account", "otp@example.com")


def test_email_send_without_a_running_mailer_stays_queued(root: Path) -> None:
    result = otppi(root, "email", "send", "someone@client.example", "hello", check=False)
    assert result.returncode == 2
    assert result.stdout == "queued: the mailer is not running, it sends the message when it starts\n"
    assert "must be an email address" in fails(root, "email", "send", "0812345", "hello")
    assert "--wait" in fails(root, "email", "send", "a@b.example", "x", "--wait", "-1")


def test_mail_settings(root: Path) -> None:
    otppi(root, "settings", "set", "mail.retry_delay", "5")
    assert otppi(root, "settings", "get", "mail.pool_retries").stdout == "2\n"
    result = otppi(root, "settings", "set", "mail.timeout", "0", check=False)
    assert result.returncode == 1 and "mail.timeout must be from 1 to 300" in result.stderr
    result = otppi(root, "settings", "set", "mail.otp_subject", "x" * 201, check=False)
    assert result.returncode == 1 and "at most 200" in result.stderr
