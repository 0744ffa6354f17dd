"""The loop every feeder shares: connect, consume, reconnect, apply settings live.

A feeder supplies a *connector*: given its settings page and an
:class:`Intake`, it returns a connected :class:`Connection`. The runner does
the rest: idling cheaply while the feeder is disabled, reconnecting with a
backoff that starts at Reconnect Delay, doubles, and is jittered (a fleet
that lost its broker together must not come back in lockstep), dropping and
re-making the connection every Refresh Connection seconds and whenever the
settings change, recording an event on every connect and disconnect (the
monitor and the buzzer watch them), and pinging the watchdog while it
consumes.
"""

from __future__ import annotations

import logging
import ssl
import time
from typing import Any, Callable, Protocol

from peewee import OperationalError

from .. import keys
from ..backoff import Backoff
from ..component import Runtime, setup_logging
from ..control import modem_control
from ..handler import Context, Handler
from ..store.models import SettingsPage
from ..store.settings import PageCache
from ..store.outbox import record_event
from .deliveries import DeliveryLedger
from .intake import Courier, Intake

log = logging.getLogger(__name__)

MAX_BACKOFF = 60.0
IDLE_CHECK = 5.0


class Connection(Protocol):
    def serve(self, keep_going: Callable[[], bool]) -> None:
        """Consume until ``keep_going()`` is False (call it at least once a second); raise when the link drops."""

    def publish(self, topic: str, body: bytes, extra: dict[str, Any]) -> None:
        """Publish an answer; safe to call from another thread."""

    def close(self) -> None: ...


Connector = Callable[[Any, Intake], Connection]


class FeederError(Exception):
    """A failure the settings must fix (refused credentials, a bad CA file): retried, but said loudly."""


def tls_context(settings: Any) -> ssl.SSLContext:
    """Certificate verification always; the CA file from the settings, else the system's CAs."""
    context = ssl.create_default_context(cafile=settings.ca_file or None)
    context.minimum_version = ssl.TLSVersion.TLSv1_2
    return context


def plain_login_refused(page: SettingsPage) -> str:
    """Why the feeder must not connect ("" when it may): its password would cross the network in clear.

    AMQP PLAIN, MQTT CONNECT, Redis AUTH and WebSocket Basic auth all carry
    the password as it is; without TLS only ``allow_plain_login`` lets it go.
    """
    if page.password and not page.ssl and not page.allow_plain_login:
        s = page.SECTION
        return (f"{s}.password would be sent without TLS: turn on {s}.ssl, or set {s}.allow_plain_login "
                "if the broker offers no TLS")
    return ""


def snapshot(page: SettingsPage) -> tuple:
    return tuple(getattr(page, name) for name in page._meta.sorted_field_names)


class FeederRunner:
    def __init__(self, name: str, page: type[SettingsPage], connector: Connector, rt: Runtime, handler: Handler):
        self.name = name
        self.page = page
        self.connector = connector
        self.rt = rt
        self.handler = handler
        self.connection: Connection | None = None
        self.courier = Courier(rt.paths, handler, self._publish, f"feeder-{name}")
        self.ledger = DeliveryLedger(rt.paths.state_dir / f"feeder-{name}.deliveries", handler.ctx.otp_key)
        self.settings = page.load()
        self._snapshot = snapshot(self.settings)
        self._checked = 0.0
        self._was_connected = False

    def _publish(self, topic: str, body: bytes, extra: dict[str, Any]) -> None:
        connection = self.connection
        if connection is None:
            raise ConnectionError("not connected")
        connection.publish(topic, body, extra)

    def _settings_changed(self) -> bool:
        if not self.rt.settings_changed():
            return False
        clear = getattr(self.handler.ctx.settings, "clear", None)
        if clear is not None:
            clear()  # the handler reads the changed pages from now on
        fresh = self.page.load()
        changed = snapshot(fresh) != self._snapshot
        self.settings, self._snapshot = fresh, snapshot(fresh)
        return changed

    def run(self) -> None:
        backoff = Backoff(self.settings.reconnect_delay, MAX_BACKOFF)
        wait = 0.0
        while not self.rt.stopped.is_set():
            self._settings_changed()
            if not self.settings.enabled:
                self.rt.sleep(IDLE_CHECK)
                continue
            if wait and not self._back_off(wait):
                break
            if not self.settings.enabled:  # disabled while backing off
                continue
            try:
                self._connect_and_serve()
                wait = 0.0
            except Exception as exc:  # every failure is retried: the broker may come back
                if self._was_connected:  # a link that was up and then dropped starts the backoff afresh
                    backoff.reset()
                backoff.first = max(self.settings.reconnect_delay, 0.1)
                wait = backoff.next()
                level = logging.ERROR if isinstance(exc, FeederError) else logging.WARNING
                log.log(level, "%s: %s; retrying in %.2f s", self.name, exc or type(exc).__name__, wait)
                self._record("disconnected", str(exc))

    def _record(self, result: str, cause: str) -> None:
        """A ``feeder`` event for the monitor and the buzzer; a failing store must not stop the feeder too."""
        try:
            record_event("feeder", source=self.name, result=result, cause=cause[:255])
        except OperationalError as exc:
            log.warning("%s: could not record the %s event: %s", self.name, result, exc)

    def _back_off(self, seconds: float) -> bool:
        """Wait *seconds* in watchdog-sized turns, cut short by changed settings; False once stopping."""
        deadline = time.monotonic() + seconds
        while (left := deadline - time.monotonic()) > 0:
            if not self.rt.sleep(min(left, 1.0)):
                return False
            if self._settings_changed():
                return True  # a fixed password or CA file is tried at once
        return True

    def _connect_and_serve(self) -> None:
        settings = self.settings
        self._was_connected = False
        refused = plain_login_refused(settings)
        if refused:
            raise FeederError(refused)
        intake = Intake(self.handler, f"{self.name}:{settings.host}", self.courier, settings.timeout, self.ledger)
        self.connection = self.connector(settings, intake)
        self._was_connected = True
        self._record("connected", f"{settings.host}:{settings.port}")
        log.info("%s: connected to %s:%d, topic %s", self.name, settings.host, settings.port, settings.topic)
        self.rt.notifier.status(f"connected to {settings.host}:{settings.port}")
        refresh_at = time.monotonic() + settings.refresh_connection if settings.refresh_connection else None
        reason = "stopping"

        def keep_going() -> bool:
            nonlocal reason
            self.rt.notifier.ping()
            if self.rt.stopped.is_set():
                return False
            if refresh_at is not None and time.monotonic() >= refresh_at:
                reason = "refresh"
                return False
            now = time.monotonic()
            if now - self._checked >= 1.0:
                self._checked = now
                if self._settings_changed():
                    reason = "settings changed"
                    return False
            return True

        try:
            self.connection.serve(keep_going)
        finally:
            connection, self.connection = self.connection, None
            try:
                connection.close()
            except Exception as exc:  # closing a dead link may fail too; it is gone either way
                log.debug("%s: close: %s", self.name, exc)
        self._record("disconnected", reason)
        log.info("%s: disconnected (%s)", self.name, reason)

    def close(self) -> None:
        self.courier.close()


def feeder_main(name: str, page: type[SettingsPage], connector: Connector) -> int:
    """The whole life of a feeder process (STYLE: config → adapters → ready → loop → stop)."""
    setup_logging(f"feeder-{name}")
    rt = Runtime(f"feeder-{name}")
    rt.install_signals()
    rt.open_store()
    handler = Handler(Context(paths=rt.paths, otp_key=keys.otp_key(rt.paths), modem_control=modem_control(rt.paths),
                              settings=PageCache()))
    runner = FeederRunner(name, page, connector, rt, handler)
    try:
        rt.ready("idle" if not runner.settings.enabled else "connecting")
        runner.run()
    finally:
        runner.close()
        rt.close()
    return 0
