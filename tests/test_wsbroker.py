"""``otppi-wsbroker``: the spec's WSMessageBroker handshake and fan-out by topic, run as its own process."""

from __future__ import annotations

import ssl
import stat
import subprocess
import sys
from pathlib import Path

import pytest
from websockets.exceptions import ConnectionClosed, InvalidStatus
from websockets.headers import build_authorization_basic
from websockets.sync.client import connect

from . import brokers
from .helpers import wait_until
from .wsbroker_process import APP_PASSWORD, APP_USER, DEVICE_PASSWORD, DEVICE_USER, WsBroker, wsbroker

pytestmark = pytest.mark.slow


@pytest.fixture
def broker(tmp_path: Path):
    made: list[WsBroker] = []

    def start(**kwargs) -> WsBroker:
        made.append(WsBroker(tmp_path / f"b{len(made)}", **kwargs).start())
        return made[-1]

    yield start
    codes = [b.stop() for b in made]
    assert codes == [0] * len(codes), "the broker must stop cleanly on SIGTERM"


@pytest.fixture(scope="module")
def test_ca(tmp_path_factory) -> brokers.TestCA:
    return brokers.TestCA.create(tmp_path_factory.mktemp("ca"))


def refusal(url: str, headers: dict[str, str] | None = None) -> InvalidStatus:
    with pytest.raises(InvalidStatus) as caught:
        with connect(url, additional_headers=headers, open_timeout=10, proxy=None):
            pass
    return caught.value


def basic(user: str, password: str) -> dict[str, str]:
    return {"Authorization": build_authorization_basic(user, password)}


def nothing_more(ws, what: str) -> None:
    """Nothing is waiting for *ws* (the order checks above already prove it; this catches strays)."""
    try:
        got = ws.recv(timeout=0.2)
    except TimeoutError:
        return
    raise AssertionError(f"{what} was sent {got!r}")


# ---------------------------------------------------------------- users file


def test_passwd_keeps_argon2id_hashes_in_a_private_file(tmp_path: Path) -> None:
    users = tmp_path / "users"
    script = Path(sys.executable).parent / "otppi-wsbroker"  # the console script the package declares
    first = wsbroker("passwd", str(users), "alice", "--password-stdin", stdin="s3cret\n")
    assert (first.returncode, first.stdout) == (0, "added user alice\n")
    again = subprocess.run([str(script), "passwd", str(users), "alice", "--password-stdin"], input="other\n",
                           text=True, capture_output=True, timeout=60)
    assert (again.returncode, again.stdout) == (0, "changed the password of alice\n")
    wsbroker("passwd", str(users), "bob", "--password-stdin", stdin="b\n")
    lines = users.read_text().splitlines()
    assert [line.split(":", 1)[0] for line in lines] == ["alice", "bob"]
    assert all(line.split(":", 1)[1].startswith("$argon2id$") for line in lines)
    assert "s3cret" not in users.read_text() and "other" not in users.read_text()
    assert stat.S_IMODE(users.stat().st_mode) == 0o600
    assert wsbroker("passwd", str(users), "bob", "--delete").stdout == "removed user bob\n"
    assert [line.split(":", 1)[0] for line in users.read_text().splitlines()] == ["alice"]

    assert wsbroker("passwd", str(users), "bob", "--delete").returncode == 1
    assert wsbroker("passwd", str(users), "carol").returncode == 2, "the password comes on stdin only"
    assert wsbroker("passwd", str(users), "a:b", "--password-stdin", stdin="x\n").returncode == 1
    assert wsbroker("passwd", str(users), "carol", "--password-stdin", stdin="\n").returncode == 2


def test_serve_refuses_to_start_without_a_readable_users_file(tmp_path: Path) -> None:
    missing = wsbroker("serve", "--port", "1", "--users", str(tmp_path / "nope"))
    assert missing.returncode == 2 and "cannot read" in missing.stderr
    (tmp_path / "bad").write_text("alice plain-text-password\n")
    bad = wsbroker("serve", "--port", "1", "--users", str(tmp_path / "bad"))
    assert bad.returncode == 2 and "line 1" in bad.stderr and "plain-text-password" not in bad.stderr


# ---------------------------------------------------------------- handshake


def test_the_handshake_checks_path_topic_and_credentials_before_the_upgrade(broker) -> None:
    b = broker()
    missing = refusal(b.url("sms"))
    assert missing.response.status_code == 401
    assert missing.response.headers["WWW-Authenticate"].startswith("Basic")
    assert refusal(b.url("sms"), basic(APP_USER, "wrong")).response.status_code == 401
    assert refusal(b.url("sms"), basic("nobody", APP_PASSWORD)).response.status_code == 401
    assert refusal(b.url("sms"), {"Authorization": "Bearer abc"}).response.status_code == 401
    assert refusal(b.url("sms", path="/other"), basic(APP_USER, APP_PASSWORD)).response.status_code == 404
    assert refusal(b.url(None), basic(APP_USER, APP_PASSWORD)).response.status_code == 400
    assert refusal(b.url(""), basic(APP_USER, APP_PASSWORD)).response.status_code == 400
    with b.client("sms") as ws:  # the spec's example handshake, then a working subscription
        assert ws.request.path == "/ws?topic=sms"
    assert "wrong" not in b.log_text() and APP_PASSWORD not in b.log_text()


def test_a_user_added_while_running_gets_in(broker) -> None:
    b = broker()
    assert refusal(b.url("sms"), basic("late", "pw")).response.status_code == 401
    b.add_user("late", "pw")
    with b.client("sms", "late", "pw"):
        pass


def test_clients_over_the_cap_are_answered_503(broker) -> None:
    b = broker(args=("--max-clients", "2"))
    with b.client("a"), b.client("b"):
        assert refusal(b.url("a"), basic(APP_USER, APP_PASSWORD)).response.status_code == 503

    def room_again() -> bool:  # once the broker has seen them leave
        try:
            with b.client("a"):
                return True
        except InvalidStatus as exc:
            assert exc.response.status_code == 503
            return False

    wait_until(room_again, what="a free place after two clients left")


# ---------------------------------------------------------------- fan-out


def test_a_message_reaches_every_other_subscriber_of_its_topic_only(broker) -> None:
    b = broker()
    with b.client("sms") as sender, b.client("sms", DEVICE_USER, DEVICE_PASSWORD) as device, \
            b.client("sms") as third, b.client("other") as elsewhere, b.client("other") as elsewhere2:
        sender.send('{"command": "echo"}')
        assert device.recv(timeout=5) == '{"command": "echo"}'
        assert third.recv(timeout=5) == '{"command": "echo"}'
        # Messages from one connection keep their order, so had the sender been sent its own message,
        # it would come before this reply.
        device.send("reply")
        assert sender.recv(timeout=5) == "reply"
        assert third.recv(timeout=5) == "reply"
        elsewhere2.send("on other")
        assert elsewhere.recv(timeout=5) == "on other", "nothing from topic sms came first"
        sender.send(b"\x00binary")
        assert device.recv(timeout=5) == b"\x00binary"
        nothing_more(sender, "the sender")
        nothing_more(elsewhere2, "the other topic's sender")
    assert '{"command": "echo"}' not in b.log_text() and "reply" not in b.log_text()


def test_a_message_over_64_kib_closes_its_sender_with_1009(broker) -> None:
    b = broker()
    with b.client("big") as sender, b.client("big") as receiver:
        sender.send("x" * (64 * 1024))
        assert len(receiver.recv(timeout=5)) == 64 * 1024
        sender.send("x" * (64 * 1024 + 1))
        with pytest.raises(ConnectionClosed) as closed:
            sender.recv(timeout=5)
        assert closed.value.rcvd.code == 1009
        with b.client("big") as late:  # the broker and the other subscribers carry on
            late.send("still here")
            assert receiver.recv(timeout=5) == "still here"


def test_a_subscriber_that_does_not_keep_up_is_closed_with_1013(broker) -> None:
    b = broker()
    with b.client("burst") as sender, b.client("burst") as stalled:
        for _ in range(400):  # 24 MB while *stalled* reads nothing: far past the broker's 1 MiB per subscriber
            sender.send("y" * 60_000)
        with pytest.raises(ConnectionClosed) as closed:
            while True:
                stalled.recv(timeout=10)
        assert closed.value.rcvd.code == 1013
        assert "reads too slowly" in b.log_text()
        with b.client("burst") as fresh:  # the sender was never at fault
            sender.send("after the burst")
            assert fresh.recv(timeout=5) == "after the burst"


def test_sigterm_closes_every_client_going_away(broker) -> None:
    b = broker()
    with b.client("sms") as ws:
        assert b.stop() == 0
        with pytest.raises(ConnectionClosed) as closed:
            ws.recv(timeout=10)
        assert closed.value.rcvd.code == 1001


# ---------------------------------------------------------------- TLS


def test_wss_with_a_certificate_from_the_test_ca(broker, test_ca: brokers.TestCA) -> None:
    b = broker(tls=test_ca)
    with b.client("sms") as one, b.client("sms") as two:
        one.send("over tls")
        assert two.recv(timeout=5) == "over tls"
    with pytest.raises(ssl.SSLCertVerificationError):  # the system's CAs do not know the test CA
        with connect(b.url("sms"), additional_headers=basic(APP_USER, APP_PASSWORD), open_timeout=10,
                     ssl=ssl.create_default_context(), proxy=None):
            pass
