"""An SMTP password goes only where it was entered for, and only over TLS unless the account allows it.

The mailer runs as its own process; accounts are changed with the real CLI, as an administrator (or
someone in an administrator's session) would.
"""

from __future__ import annotations

from .conftest import USERS


def send(mail_root, receiver: str):
    return mail_root.cli("email", "send", receiver, "hello", "--wait", "20", check=False)


def test_pointing_an_account_at_another_server_clears_its_password(mail_root, mailer, smtp) -> None:
    mail_root.add_account("otp1@example.com", "starttls")
    # Someone moves the account to a server they control (here: the plain test server, which records logins).
    out = mail_root.cli("email-account", "set", "1", "smtp_port", str(smtp["plain"].port)).stdout
    assert out == (f"email account '1': smtp_port = {smtp['plain'].port}; the password was cleared because the "
                   "change moves where it is sent: enter it again with "
                   "'otppi email-account password 1 --password-stdin'\n")
    mail_root.cli("email-account", "set", "1", "starttls", "false")
    mail_root.cli("email-account", "set", "1", "allow_plain_login", "true")
    mailer()
    result = send(mail_root, "walked@client.example")
    assert result.returncode == 1
    assert "the account has no password" in result.stderr
    assert smtp.all_to("walked@client.example") == []

    # The owner enters it again for the new server: now it is used there.
    mail_root.cli("email-account", "password", "1", "--password-stdin", stdin=USERS["otp1@example.com"] + "\n")
    assert send(mail_root, "again@client.example").returncode == 0
    got = smtp.received("again@client.example")
    assert (got.server, got.login) == ("plain", "otp1@example.com")


def test_a_password_is_never_sent_without_tls_unless_the_account_allows_it(mail_root, mailer, smtp) -> None:
    plain = smtp["plain"]
    out = mail_root.cli("email-account", "add", "otp1@example.com", "--host", plain.host, "--port", str(plain.port),
                        "--no-starttls", "--password-stdin", stdin=USERS["otp1@example.com"] + "\n").stdout
    assert "the mailer will not send its password without TLS" in out
    mailer()
    result = send(mail_root, "clear@client.example")
    assert result.returncode == 1
    assert "login refused: the password would go without TLS" in result.stderr
    assert smtp.all_to("clear@client.example") == []
    assert "auth-refused-without-tls" in mail_root.cli("email-account", "list").stdout

    mail_root.cli("email-account", "set", "1", "allow_plain_login", "true")
    mail_root.cli("email-account", "password", "1", "--password-stdin", stdin=USERS["otp1@example.com"] + "\n")
    assert send(mail_root, "allowed@client.example").returncode == 0
    got = smtp.received("allowed@client.example")
    assert (got.server, got.tls, got.login) == ("plain", False, "otp1@example.com")
