"""Fixtures: a throwaway OTPPI_ROOT with a migrated store, the handler, and a live api process."""

from __future__ import annotations

import shutil
import tempfile
from pathlib import Path

import pytest

from otppi import keys
from otppi.handler import Context, Handler
from otppi.outcome import OutcomeWatcher
from otppi.paths import Paths
from otppi.store import settings
from otppi.store.db import close_database, db, open_database
from otppi.store.migrations import migrate

from .helpers import ApiProcess, free_port, otppi, short_root

API_USER, API_PASSWORD = "app-server", "correct horse battery staple"


@pytest.fixture
def short_tmp() -> Path:
    """A temp dir with a short path, removed afterwards (Unix socket paths must fit 108 bytes)."""
    root = short_root()
    yield root
    shutil.rmtree(root, ignore_errors=True)


@pytest.fixture
def paths(short_tmp: Path, monkeypatch: pytest.MonkeyPatch) -> Paths:
    """A fresh root with keys and the latest schema; the shared db handle points at it."""
    root = short_tmp / "root"
    monkeypatch.setenv("OTPPI_ROOT", str(root))
    p = Paths(root)
    keys.ensure_all(p)
    open_database(p.database, sealing_key=keys.otp_key(p))
    migrate(db)
    yield p
    close_database()


@pytest.fixture
def handler(paths: Paths) -> Handler:
    watcher = OutcomeWatcher(paths, "test")
    yield Handler(Context(paths=paths, otp_key=keys.otp_key(paths), watcher=watcher))
    watcher.close()


@pytest.fixture
def api_root(short_tmp: Path) -> Path:
    """A root provisioned through the real CLI, as an operator would."""
    root = short_tmp / "api"
    otppi(root, "migrate")
    otppi(root, "api-user", "add", API_USER, "--password-stdin", stdin=API_PASSWORD + "\n")
    otppi(root, "settings", "set", "api.bind_address", "127.0.0.1")
    otppi(root, "settings", "set", "api.http_port", str(free_port()))
    otppi(root, "settings", "set", "api.wait_timeout", "0.5")
    return root


@pytest.fixture
def api(api_root: Path) -> ApiProcess:
    port = int(otppi(api_root, "settings", "get", "api.http_port").stdout)
    proc = ApiProcess(api_root, port, API_USER, API_PASSWORD).start()
    yield proc
    assert proc.stop() == 0, "the api component must stop cleanly on SIGTERM"


@pytest.fixture
def gateway_factory(short_tmp: Path):
    """Build a Gateway (simulated modems + components); every one made is closed afterwards."""
    from .gateway import Gateway

    made = []

    def make(count: int = 2, **kwargs) -> Gateway:
        gw = Gateway(short_tmp / f"gw{len(made)}", count=count, **kwargs)
        made.append(gw)
        return gw

    yield make
    for gw in made:
        gw.close()


def set_setting(key: str, value: str) -> None:
    settings.set_text(key, value)


@pytest.fixture(scope="session")
def brokers(tmp_path_factory):
    """rabbitmq-server, mosquitto and redis-server of our own, for the whole session."""
    from .brokers import start_all

    base = Path(tempfile.mkdtemp(prefix="brk", dir="/tmp"))
    running = start_all(base)
    yield running
    for broker in running.values():
        broker.stop()
    shutil.rmtree(base, ignore_errors=True)


@pytest.fixture
def amqp_broker(brokers):
    return brokers["amqp"]


@pytest.fixture
def mqtt_broker(brokers):
    return brokers["mqtt"]


@pytest.fixture
def redis_broker(brokers):
    return brokers["redis"]
