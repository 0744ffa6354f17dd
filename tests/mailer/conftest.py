"""A real SMTP server for the mailer tests: aiosmtpd on free ports, in plain, STARTTLS and implicit TLS.

Started once for the session. AUTH checks a user and password against
:data:`USERS`; TLS uses a certificate from the test CA, so the mailer must
be told to trust that CA (an account's ``ca_file``) and never skips
verification. Every message accepted is recorded with the server that took
it, whether the connection was encrypted, and who logged in.
"""

from __future__ import annotations

import shutil
import sqlite3
import ssl
import subprocess
import sys
import tempfile
import threading
from dataclasses import dataclass
from email import message_from_bytes
from email.message import EmailMessage
from email.policy import default as default_policy
from pathlib import Path

import pytest
from aiosmtpd.controller import Controller
from aiosmtpd.smtp import AuthResult, LoginPassword

from ..brokers import TestCA
from ..helpers import ApiProcess, env_for, free_port, otppi, wait_until

USERS = {"otp1@example.com": "pw-one", "otp2@example.com": "pw-two", "otp3@example.org": "pw-three",
         "bulk@example.net": "pw-bulk"}
#: Receivers at this domain are refused at RCPT with a 550.
REFUSED_DOMAIN = "refused.example"


@dataclass
class Received:
    server: str
    mail_from: str
    rcpt_tos: list[str]
    content: bytes
    tls: bool
    login: str

    @property
    def message(self) -> EmailMessage:
        return message_from_bytes(self.content, policy=default_policy)


class Mailbox:
    """The aiosmtpd handler: records every message it accepts."""

    def __init__(self, name: str):
        self.name = name
        self.messages: list[Received] = []
        self._lock = threading.Lock()

    async def handle_RCPT(self, server, session, envelope, address, rcpt_options):
        if address.endswith("@" + REFUSED_DOMAIN):
            return "550 5.1.1 no such mailbox here"
        envelope.rcpt_tos.append(address)
        return "250 OK"

    async def handle_DATA(self, server, session, envelope):
        tls = server.transport.get_extra_info("ssl_object") is not None
        login = session.auth_data.login.decode() if isinstance(session.auth_data, LoginPassword) else ""
        with self._lock:
            self.messages.append(Received(self.name, envelope.mail_from, list(envelope.rcpt_tos),
                                          envelope.original_content or envelope.content, tls, login))
        return "250 2.0.0 accepted"

    def to(self, receiver: str) -> list[Received]:
        with self._lock:
            return [m for m in self.messages if receiver in m.rcpt_tos]


def authenticator(server, session, envelope, mechanism, auth_data) -> AuthResult:
    ok = isinstance(auth_data, LoginPassword) and USERS.get(auth_data.login.decode()) == auth_data.password.decode()
    return AuthResult(success=ok, handled=False, auth_data=auth_data if ok else None)


@dataclass
class SmtpServer:
    name: str
    host: str
    port: int
    box: Mailbox
    ca: TestCA
    controller: Controller


class SmtpServers:
    def __init__(self, base: Path):
        self.ca = TestCA.create(base / "ca")
        context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
        context.load_cert_chain(self.ca.cert, self.ca.key)
        common = {"hostname": "127.0.0.1", "authenticator": authenticator}
        self.servers = {
            # AUTH without TLS on the plain one only, for the plain security mode.
            "plain": self._start("plain", auth_require_tls=False, **common),
            "starttls": self._start("starttls", tls_context=context, require_starttls=True, **common),
            "smtps": self._start("smtps", ssl_context=context, auth_require_tls=False, **common),
        }

    def _start(self, name: str, **kwargs) -> SmtpServer:
        box = Mailbox(name)
        controller = Controller(box, port=free_port(), **kwargs)
        controller.start()
        return SmtpServer(name, "127.0.0.1", controller.port, box, self.ca, controller)

    def __getitem__(self, name: str) -> SmtpServer:
        return self.servers[name]

    def received(self, receiver: str, timeout: float = 15.0) -> Received:
        """The one message delivered to *receiver*, on whichever server took it."""
        def found():
            hits = [m for s in self.servers.values() for m in s.box.to(receiver)]
            return hits[0] if len(hits) == 1 else None
        return wait_until(found, timeout=timeout, what=f"a message to {receiver}")

    def all_to(self, receiver: str) -> list[Received]:
        return [m for s in self.servers.values() for m in s.box.to(receiver)]

    def stop(self) -> None:
        for server in self.servers.values():
            server.controller.stop()


@pytest.fixture(scope="session")
def smtp():
    base = Path(tempfile.mkdtemp(prefix="smtp", dir="/tmp"))
    servers = SmtpServers(base)
    yield servers
    servers.stop()
    shutil.rmtree(base, ignore_errors=True)


# ---------------------------------------------------------------- the mailer as its own process


class MailerProcess:
    """``python -m otppi.mailer`` as systemd runs it, against *root*."""

    def __init__(self, root: Path):
        self.root = root
        self.log = root / "mailer.log"
        self.proc: subprocess.Popen | None = None

    def start(self) -> "MailerProcess":
        with self.log.open("ab") as log:
            self.proc = subprocess.Popen([sys.executable, "-m", "otppi.mailer"], env=env_for(self.root),
                                         stdout=log, stderr=subprocess.STDOUT)
        wait_until(self._listening, what=f"the mailer's doorbell ({self.log})")
        return self

    def _listening(self) -> bool:
        if self.proc is not None and self.proc.poll() is not None:
            raise AssertionError(f"mailer exited with {self.proc.returncode}: {self.log.read_text()[-2000:]}")
        return (self.root / "run/otppi/mailer.bell").exists()

    def stop(self) -> int:
        if self.proc is None:
            return 0
        self.proc.terminate()
        try:
            return self.proc.wait(20)
        finally:
            self.proc = None


class MailRoot:
    """A root provisioned through the real CLI, with helpers to add accounts and read the store."""

    def __init__(self, root: Path, smtp: SmtpServers):
        self.root = root
        self.smtp = smtp
        otppi(root, "migrate")
        for key, value in (("mail.retry_delay", "0.2"), ("mail.timeout", "5")):
            otppi(root, "settings", "set", key, value)

    def cli(self, *args: str, stdin: str | None = None, check: bool = True):
        return otppi(self.root, *args, stdin=stdin, check=check)

    def add_account(self, sender: str, server: str | None, *args: str, password: str | None = None,
                    port: int | None = None) -> None:
        """An account on one of the test servers (its mode and the test CA), or on a port where none listens.

        Plain accounts allow their login without TLS (the test servers are on this machine).
        """
        plain = ["--no-starttls", "--allow-plain-login"]
        if server is None:
            mode = ["--port", str(port or free_port()), *plain]
        else:
            s = self.smtp[server]
            mode = ["--port", str(s.port), "--ca-file", str(s.ca.ca)]
            mode += {"plain": plain, "starttls": ["--starttls"], "smtps": ["--ssl"]}[server]
        self.cli("email-account", "add", sender, "--host", "127.0.0.1", *mode, *args, "--password-stdin",
                 stdin=(password if password is not None else USERS.get(sender, "x")) + "\n")

    def rows(self, sql: str, *params) -> list[tuple]:
        con = sqlite3.connect(self.root / "var/lib/otppi/otppi.db", timeout=15)
        try:
            return con.execute(sql, params).fetchall()
        finally:
            con.close()

    def outbox(self) -> list[tuple]:
        return self.rows("select id, kind, receiver, state, account, attempts, last_error, body, subject "
                         "from email_outbox order by id")

    def events(self) -> list[tuple]:
        return self.rows("select modem, receiver, result, cause from event where kind = 'email' order by id")


@pytest.fixture
def mail_root(short_tmp: Path, smtp: SmtpServers) -> MailRoot:
    return MailRoot(short_tmp / "m", smtp)


@pytest.fixture
def mailer(mail_root: MailRoot):
    """Start the mailer for *mail_root* (after the test added its accounts); stopped cleanly afterwards."""
    started: list[MailerProcess] = []

    def start() -> MailerProcess:
        proc = MailerProcess(mail_root.root).start()
        started.append(proc)
        return proc

    yield start
    for proc in started:
        assert proc.stop() == 0, f"the mailer must stop cleanly on SIGTERM: {proc.log.read_text()[-2000:]}"


API_USER, API_PASSWORD = "app-server", "correct horse battery staple"


@pytest.fixture
def api_for(mail_root: MailRoot):
    """Start the api component on *mail_root* (REST on a free port, waiting up to 15 s for outcomes)."""
    started: list[ApiProcess] = []

    def start() -> ApiProcess:
        port = free_port()
        mail_root.cli("api-user", "add", API_USER, "--password-stdin", stdin=API_PASSWORD + "\n")
        for key, value in (("api.bind_address", "127.0.0.1"), ("api.http_port", str(port)),
                           ("api.wait_timeout", "15")):
            mail_root.cli("settings", "set", key, value)
        proc = ApiProcess(mail_root.root, port, API_USER, API_PASSWORD).start()
        started.append(proc)
        return proc

    yield start
    for proc in started:
        assert proc.stop() == 0
