"""One message through one account, against the real test server: every error told apart."""

from __future__ import annotations

import socket
from zoneinfo import ZoneInfo

import pytest

from otppi.mailer import smtp as client
from otppi.mailer.compose import compose
from otppi.mailer.pool import Account

from .. import brokers
from ..helpers import free_port
from .conftest import REFUSED_DOMAIN, USERS


def account(server, sender: str = "otp1@example.com", *, password: str | None = None, ca_file: str | None = None,
            mode: str | None = None, authentication: bool = True, port: int | None = None,
            allow_plain_login: bool | None = None) -> Account:
    """An account on *server*; a plain one allows its login without TLS unless told otherwise."""
    mode = mode or server.name
    return Account(id=1, sender=sender, host=server.host, port=port or server.port, ssl=mode == "smtps",
                   starttls=mode == "starttls", authentication=authentication,
                   password=USERS[sender] if password is None else password,
                   ca_file=str(server.ca.ca) if ca_file is None else ca_file, daily_quota=0,
                   allow_plain_login=mode == "plain" if allow_plain_login is None else allow_plain_login)


def deliver(acc: Account, receiver: str) -> None:
    message = compose(sender=acc.sender, from_name="t", receiver=receiver, subject="s", text="hello", now=0,
                      zone=ZoneInfo("UTC"))
    client.send(acc, message, receiver, timeout=5)


def failure(acc: Account, receiver: str = "nobody@client.example") -> client.SendError:
    with pytest.raises(client.SendError) as caught:
        deliver(acc, receiver)
    return caught.value


@pytest.mark.parametrize("mode", ["plain", "starttls", "smtps"])
def test_delivers_in_each_mode(smtp, mode: str) -> None:
    receiver = f"direct-{mode}@client.example"
    deliver(account(smtp[mode]), receiver)
    assert smtp[mode].box.to(receiver)[0].tls == (mode != "plain")


@pytest.mark.parametrize("mode", ["starttls", "smtps"])
def test_wrong_password(smtp, mode: str) -> None:
    error = failure(account(smtp[mode], password="wrong"))
    assert error.reason.startswith("authentication failed: 535") and not error.transient
    assert "wrong" not in error.reason


@pytest.mark.parametrize("mode", ["starttls", "smtps"])
def test_certificate_is_verified(smtp, tmp_path, mode: str) -> None:
    other = brokers.TestCA.create(tmp_path / "other")
    error = failure(account(smtp[mode], ca_file=str(other.ca)))
    assert error.reason.startswith("TLS failed: the server's certificate is not trusted")
    assert "certificate verify failed" in error.reason or "unable to get local issuer" in error.reason
    # Without a CA file the system's CAs decide, and they do not know the test CA either.
    assert failure(account(smtp[mode], ca_file="")).reason.startswith("TLS failed: the server's certificate")


def test_starttls_never_falls_back_to_plain(smtp) -> None:
    error = failure(account(smtp["plain"], mode="starttls"))
    assert error.reason == "TLS failed: the server does not offer STARTTLS" and not error.transient


def test_tls_to_a_plain_server(smtp) -> None:
    assert failure(account(smtp["plain"], mode="smtps")).reason.startswith("TLS failed: ")


def test_missing_ca_file(smtp) -> None:
    assert failure(account(smtp["smtps"], ca_file="/nonexistent/ca.crt")).reason.startswith(
        "TLS failed: cannot load the CA file /nonexistent/ca.crt")


def test_server_down() -> None:
    acc = Account(id=1, sender="otp1@example.com", host="127.0.0.1", port=free_port(), ssl=False, starttls=False,
                  authentication=False, password="", ca_file="", daily_quota=0)
    error = failure(acc)
    assert error.reason == "cannot connect: connection refused" and error.transient


def test_recipient_refused(smtp) -> None:
    error = failure(account(smtp["starttls"]), receiver=f"ghost@{REFUSED_DOMAIN}")
    assert error.reason == "recipient refused: 550 5.1.1 no such mailbox here" and not error.transient


def test_auth_required_over_tls_only(smtp) -> None:
    # The STARTTLS server offers AUTH only after STARTTLS: a plain login there is refused, not sent in clear.
    error = failure(account(smtp["starttls"], mode="plain"))
    assert error.reason == "authentication failed: the server offers no AUTH here" and not error.transient



def test_no_login_without_tls_unless_the_account_allows_it() -> None:
    # A listening socket nobody accepts on: a connection attempt would wait in its backlog.
    with socket.socket() as listener:
        listener.bind(("127.0.0.1", 0))
        listener.listen(1)
        listener.setblocking(False)
        acc = Account(id=1, sender="otp1@example.com", host="127.0.0.1", port=listener.getsockname()[1], ssl=False,
                      starttls=False, authentication=True, password="pw-one", ca_file="", daily_quota=0)
        error = failure(acc)
        assert error.reason.startswith("login refused: the password would go without TLS") and not error.transient
        with pytest.raises(BlockingIOError):
            listener.accept()  # the mailer did not even connect: nothing to read the password from


def test_an_account_whose_password_was_cleared_does_not_log_in(smtp) -> None:
    error = failure(account(smtp["starttls"], password=""))
    assert error.reason.startswith("authentication failed: the account has no password") and not error.transient


def test_a_password_smtplib_cannot_send(smtp) -> None:
    error = failure(account(smtp["smtps"], password="pässwörd"))
    assert error.reason == "authentication failed: smtplib sends only ASCII logins and passwords"
