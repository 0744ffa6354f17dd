"""WebSocket feeder: a subscriber of a WSMessageBroker (or ``otppi-wsbroker``), one request per text frame.

The handshake is the spec's (Scenario 2, "Handhakes"): ``GET <path>?topic=<topic>``
on ``ws://`` (``wss://`` when SSL is on, certificate verified, CA file from the
settings) with HTTP Basic credentials. The shared :class:`FeederRunner` does
the reconnecting, the refreshing, the events and the live settings.

What a WebSocket broker cannot do, and what follows from it:

- **No acknowledgement, no storage.** WSMessageBroker passes a message to the
  clients connected at that moment and keeps nothing, so a request published
  while the device is offline (or reconnecting) is lost, as it was with the
  original OTP-Pi. Use RabbitMQ, MQTT (QoS 1) or Redis Streams when nothing
  may be lost.
- **Answers.** The spec says the device never sends to the broker; that holds
  for every request without a ``callback_topic``. A request naming one expects
  its answer there: when the callback topic is the subscribed topic the answer
  goes out as a text frame on the same connection (the broker passes it to
  every other client on the topic, never back to the device); any other topic
  gets a short-lived connection of its own, ``<path>?topic=<callback_topic>``
  with the same credentials, that sends the answer and closes.

Leaving on purpose (Refresh Connection, changed settings, stop) closes the
link first and still takes every request that reached the device before the
broker saw the close; only what is published while no link is open is lost.
Every frame, text or binary, is handed to the intake as it is; its body
never reaches a log.
"""

from __future__ import annotations

import contextlib
import logging
import ssl
import threading
from typing import Any, Callable
from urllib.parse import quote

from websockets.exceptions import ConnectionClosed, InvalidStatus
from websockets.headers import build_authorization_basic
from websockets.sync.client import ClientConnection, connect as ws_connect

from ...contract import MAX_BODY
from ..intake import UNKEPT, Intake
from ..runner import FeederError, tls_context

log = logging.getLogger(__name__)

#: Frames up to this size reach the intake (which refuses any over 64 KiB with 1300); bigger ones close the link (1009).
MAX_FRAME = 16 * MAX_BODY
RECV_TURN = 1.0  # seconds; the runner wants keep_going() called at least once a second
#: The handshake blocks the loop that pings the watchdog (WatchdogSec=30), so Timeout is capped for it.
MAX_OPEN_TIMEOUT = 20.0
CLOSE_TIMEOUT = 5.0


def endpoint(settings: Any, topic: str) -> str:
    """``ws[s]://host:port<path>?topic=<topic>``, the topic percent-encoded."""
    host = f"[{settings.host}]" if ":" in settings.host else settings.host
    path = settings.path if settings.path.startswith("/") else "/" + settings.path
    separator = "&" if "?" in path else "?"
    return f"{'wss' if settings.ssl else 'ws'}://{host}:{settings.port}{path}{separator}topic={quote(topic, safe='')}"


def _client_tls(settings: Any) -> ssl.SSLContext | None:
    if not settings.ssl:
        return None
    try:
        return tls_context(settings)
    except (OSError, ssl.SSLError) as exc:
        raise FeederError(f"cannot use the CA file {settings.ca_file!r} (feeder_ws.ca_file): {exc}") from exc


def open_link(settings: Any, topic: str, stack: contextlib.ExitStack) -> ClientConnection:
    """Connect and subscribe to *topic*; the connection is closed with *stack*.

    Refusals the settings must fix (credentials, path, certificate) raise
    :class:`FeederError`; anything else (refused, reset, timed out) is an
    ordinary error the runner retries.
    """
    headers = {}
    if settings.username:
        if ":" in settings.username:  # Basic auth splits user and password at the first colon (RFC 7617)
            raise FeederError("feeder_ws.username must not contain ':'")
        headers["Authorization"] = build_authorization_basic(settings.username, settings.password)
    try:
        return stack.enter_context(ws_connect(
            endpoint(settings, topic), additional_headers=headers, ssl=_client_tls(settings),
            open_timeout=min(settings.timeout, MAX_OPEN_TIMEOUT), close_timeout=CLOSE_TIMEOUT,
            max_size=MAX_FRAME, compression=None, proxy=None,
        ))
    except InvalidStatus as exc:
        status = exc.response.status_code
        if status in (401, 403):
            raise FeederError(f"the broker refused user {settings.username!r} (HTTP {status}): "
                              "check feeder_ws.username and feeder_ws.password") from None
        if status == 404:
            raise FeederError(f"the broker has no WebSocket endpoint at {settings.path!r} (HTTP 404): "
                              "check feeder_ws.path") from None
        raise ConnectionError(f"the broker answered the handshake with HTTP {status}") from None
    except ssl.SSLCertVerificationError as exc:
        raise FeederError(f"the broker's TLS certificate was not verified ({exc.verify_message}): "
                          "name its CA in feeder_ws.ca_file") from None


class WsConnection:
    """One subscription: frames in to the intake, answers out (see the module's note on answers)."""

    def __init__(self, settings: Any, intake: Intake):
        self.settings = settings
        self.intake = intake
        self._stack = contextlib.ExitStack()
        self._link = open_link(settings, settings.topic, self._stack)

    def serve(self, keep_going: Callable[[], bool]) -> None:
        try:
            while keep_going():
                try:
                    frame = self._link.recv(timeout=RECV_TURN, decode=False)
                except TimeoutError:
                    continue
                self.intake.take(frame, delivery=UNKEPT)
        except ConnectionClosed as exc:  # frames received before the close were taken first
            raise ConnectionError(f"the broker closed the connection ({_close_of(exc)})") from None
        self._leave()

    def _leave(self) -> None:
        """Leave on purpose (refresh, changed settings, stop) without dropping what already arrived.

        The close frame goes out first; every request the broker sent before it
        saw it still arrives ahead of its own close frame and is taken here.
        The close runs in a thread so this one keeps reading (a full receive
        queue would otherwise stall the closing handshake).
        """
        closing = threading.Thread(target=self._link.close, name="feeder-ws-close", daemon=True)
        closing.start()
        try:
            while True:
                self.intake.take(self._link.recv(timeout=CLOSE_TIMEOUT + 1.0, decode=False), delivery=UNKEPT)
        except (ConnectionClosed, TimeoutError):
            pass
        closing.join()

    def publish(self, topic: str, body: bytes, extra: dict[str, Any]) -> None:
        """Send one answer; called from the courier's thread.

        Safe beside ``recv`` in the serving thread: the sync client sends each
        whole message under its own protocol lock.
        """
        if topic == self.settings.topic:
            self._link.send(body.decode())
            return
        log.debug("an answer of %d bytes to topic %r on a connection of its own", len(body), topic[:64])
        with contextlib.ExitStack() as stack:
            open_link(self.settings, topic, stack).send(body.decode())

    def close(self) -> None:
        self._stack.close()


def _close_of(exc: ConnectionClosed) -> str:
    frame = exc.rcvd or exc.sent
    if frame is None:
        return "no close frame: the link was lost"
    return f"close {frame.code}" + (f" {frame.reason[:80]}" if frame.reason else "")


def connect(settings: Any, intake: Intake) -> WsConnection:
    """The feeder's connector for :func:`otppi.feeders.runner.feeder_main`."""
    return WsConnection(settings, intake)
