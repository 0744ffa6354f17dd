"""Real brokers for the tests: rabbitmq-server, mosquitto and redis-server from Debian's packages.

Each runs as a child of the test session, on free ports, with its files in a
temp dir, never touching the machine's own instances. Each has a plain and a
TLS listener (a test CA signs the server certificate), a user with a
password, and can be stopped and started again on the same ports and data
(the broker-restart tests).
"""

from __future__ import annotations

import os
import shutil
import subprocess
import time
from dataclasses import dataclass
from pathlib import Path

from .helpers import free_port, listening, wait_until

USER, PASSWORD = "otppi", "broker-secret"
RABBITMQ_BIN = Path("/usr/lib/rabbitmq/bin")  # the real scripts; /usr/sbin's wrappers switch user


@dataclass
class TestCA:
    __test__ = False  # a helper, not a test class
    directory: Path

    @property
    def ca(self) -> Path:
        return self.directory / "ca.crt"

    @property
    def cert(self) -> Path:
        return self.directory / "server.crt"

    @property
    def key(self) -> Path:
        return self.directory / "server.key"

    @classmethod
    def create(cls, directory: Path) -> "TestCA":
        directory.mkdir(parents=True, exist_ok=True)

        def run(*args: str) -> None:
            subprocess.run(["openssl", *args], check=True, capture_output=True, cwd=directory)

        run("req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "2", "-subj", "/CN=OTP-Pi test CA",
            "-keyout", "ca.key", "-out", "ca.crt")
        run("req", "-newkey", "rsa:2048", "-nodes", "-subj", "/CN=localhost", "-keyout", "server.key",
            "-out", "server.csr")
        (directory / "san.ext").write_text("subjectAltName=DNS:localhost,IP:127.0.0.1\n")
        run("x509", "-req", "-in", "server.csr", "-CA", "ca.crt", "-CAkey", "ca.key", "-CAcreateserial",
            "-days", "2", "-extfile", "san.ext", "-out", "server.crt")
        for name in ("server.key", "ca.key"):
            (directory / name).chmod(0o644)  # brokers running as their own users read it
        return cls(directory)


class Broker:
    name = ""

    def __init__(self, directory: Path, ca: TestCA):
        self.dir = directory
        self.ca = ca
        self.host = "127.0.0.1"
        self.port = free_port()
        self.tls_port = free_port()
        self.user, self.password = USER, PASSWORD
        self.proc: subprocess.Popen | None = None
        self.dir.mkdir(parents=True, exist_ok=True)
        self.log = self.dir / "broker.log"

    def command(self) -> list[str]:
        raise NotImplementedError

    def env(self) -> dict[str, str]:
        return dict(os.environ)

    def start(self) -> "Broker":
        with self.log.open("ab") as log:
            self.proc = subprocess.Popen(self.command(), env=self.env(), stdout=log, stderr=subprocess.STDOUT,
                                         cwd=self.dir, start_new_session=True)
        wait_until(self._ready, timeout=60, interval=0.1, what=f"{self.name} on {self.port} ({self.log})")
        return self

    def _ready(self) -> bool:
        if self.proc is not None and self.proc.poll() is not None:
            raise AssertionError(f"{self.name} exited: {self.log.read_text()[-2000:]}")
        return listening(self.port) and listening(self.tls_port)

    def stop(self) -> None:
        if self.proc is None:
            return
        self.proc.terminate()
        try:
            self.proc.wait(30)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()
        self.proc = None
        wait_until(lambda: not listening(self.port), what=f"{self.name} to stop listening")

    def restart(self) -> None:
        self.stop()
        self.start()


class Redis(Broker):
    name = "redis-server"

    def command(self) -> list[str]:
        conf = self.dir / "redis.conf"
        conf.write_text(
            f"bind 127.0.0.1\nport {self.port}\ndir {self.dir}\nsave \"\"\n"
            "appendonly yes\nappendfsync always\n"  # a restart keeps the streams
            f"requirepass {self.password}\n"
            f"user {self.user} on >{self.password} ~* &* +@all\n"
            f"tls-port {self.tls_port}\ntls-cert-file {self.ca.cert}\ntls-key-file {self.ca.key}\n"
            f"tls-ca-cert-file {self.ca.ca}\ntls-auth-clients no\n"
        )
        return ["redis-server", str(conf)]


class Mosquitto(Broker):
    name = "mosquitto"

    def start(self) -> "Broker":
        passwords = self.dir / "passwords"
        if not passwords.exists():
            subprocess.run(["mosquitto_passwd", "-b", "-c", str(passwords), self.user, self.password], check=True,
                           capture_output=True)
            passwords.chmod(0o644)
        (self.dir / "mosquitto.conf").write_text(
            "user root\n"  # stay the test session's user: the temp dir is private
            "per_listener_settings false\n"
            "allow_anonymous false\n"
            f"password_file {passwords}\n"
            "persistence true\n"
            f"persistence_location {self.dir}/\n"
            "autosave_interval 1\n"
            "max_queued_messages 100000\n"
            f"listener {self.port} 127.0.0.1\n"
            f"listener {self.tls_port} 127.0.0.1\n"
            f"cafile {self.ca.ca}\ncertfile {self.ca.cert}\nkeyfile {self.ca.key}\n"
        )
        return super().start()

    def command(self) -> list[str]:
        return ["mosquitto", "-c", str(self.dir / "mosquitto.conf")]


class RabbitMQ(Broker):
    name = "rabbitmq-server"

    def __init__(self, directory: Path, ca: TestCA):
        super().__init__(directory, ca)
        self.node = f"otppitest{self.port}@localhost"
        self.dist_port = free_port()

    def env(self) -> dict[str, str]:
        for sub in ("mnesia", "log"):
            (self.dir / sub).mkdir(exist_ok=True)
        (self.dir / "enabled_plugins").write_text("[].\n")
        (self.dir / "rabbitmq.conf").write_text(
            f"listeners.tcp.default = {self.port}\n"
            f"listeners.ssl.default = {self.tls_port}\n"
            f"ssl_options.cacertfile = {self.ca.ca}\n"
            f"ssl_options.certfile = {self.ca.cert}\n"
            f"ssl_options.keyfile = {self.ca.key}\n"
            "ssl_options.verify = verify_none\n"
            "loopback_users = none\n"
        )
        return dict(
            os.environ, HOME=str(self.dir), RABBITMQ_NODENAME=self.node, RABBITMQ_NODE_PORT=str(self.port),
            RABBITMQ_DIST_PORT=str(self.dist_port), RABBITMQ_MNESIA_BASE=str(self.dir / "mnesia"),
            RABBITMQ_LOG_BASE=str(self.dir / "log"), RABBITMQ_CONFIG_FILE=str(self.dir / "rabbitmq.conf"),
            RABBITMQ_ENABLED_PLUGINS_FILE=str(self.dir / "enabled_plugins"),
            RABBITMQ_FEATURE_FLAGS_FILE=str(self.dir / "feature_flags"),
            RABBITMQ_PID_FILE=str(self.dir / "pid"),
        )

    def command(self) -> list[str]:
        return [str(RABBITMQ_BIN / "rabbitmq-server")]

    def ctl(self, *args: str) -> str:
        result = subprocess.run([str(RABBITMQ_BIN / "rabbitmqctl"), "-n", self.node, *args], env=self.env(),
                                capture_output=True, text=True, timeout=60)
        if result.returncode != 0:
            raise AssertionError(f"rabbitmqctl {' '.join(args)}: {result.stderr or result.stdout}")
        return result.stdout

    def start(self) -> "Broker":
        super().start()
        self.ctl("await_startup", "--timeout", "60")
        users = self.ctl("list_users", "--quiet")
        if self.user not in users:
            self.ctl("add_user", self.user, self.password)
            self.ctl("set_permissions", "-p", "/", self.user, ".*", ".*", ".*")
        return self

    def stop(self) -> None:
        if self.proc is None:
            return
        try:
            self.ctl("shutdown")
        except AssertionError:
            pass
        super().stop()


def have(program: str) -> bool:
    return shutil.which(program) is not None or (RABBITMQ_BIN / program).exists()


def start_all(base: Path) -> dict[str, Broker]:
    """Start every broker in parallel-friendly order (RabbitMQ is the slow one)."""
    ca = TestCA.create(base / "ca")
    brokers = {"redis": Redis(base / "redis", ca), "mqtt": Mosquitto(base / "mqtt", ca),
               "amqp": RabbitMQ(base / "amqp", ca)}
    started = time.monotonic()
    for broker in brokers.values():
        broker.start()
    del started
    return brokers
