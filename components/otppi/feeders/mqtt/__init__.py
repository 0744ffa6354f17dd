"""The MQTT feeder: a persistent QoS 1 subscription, each message acknowledged after it is committed.

Nothing lost: the session lives under the configured Client ID (MQTT 3.1.1
with clean session off, or MQTT 5 with clean start off and a session that
never expires), the subscription is QoS 1, and a PUBLISH is acknowledged
(manual ack) only after :meth:`Intake.take` returned, that is after the
request is in the store. A message taken but not acknowledged when the link
or the process dies is sent again by the broker when the feeder reconnects;
its ``id`` or ``reference`` makes the second copy harmless.

Fleet mode: with a Share Group the feeder subscribes to the MQTT 5 shared
subscription ``$share/<group>/<topic>``, so each message goes to one device
of the fleet. A member that is down keeps its share queued in its session
until it comes back (mosquitto hands it to no other member), so a device
leaves a fleet for good only once its session is cleared on the broker.

The filter last subscribed is remembered in the state directory: a session
outlives the process, so after a change of Topic or Share Group the old
subscription is removed, or the device would keep taking the old topic (and,
leaving fleet mode the other way round, every message of the fleet).

One thread does all socket I/O. :meth:`MqttConnection.serve` runs paho's
loop; :meth:`MqttConnection.publish`, called from the courier's thread, only
queues the packet and wakes that loop (paho's external-event-loop hook), so
two threads never write to one (TLS) socket at once.
"""

from __future__ import annotations

import logging
import ssl
import time
from pathlib import Path
from typing import Any, Callable

import paho.mqtt.client as mqtt
from paho.mqtt.enums import CallbackAPIVersion, MQTTErrorCode
from paho.mqtt.packettypes import PacketTypes
from paho.mqtt.properties import Properties
from paho.mqtt.reasoncodes import ReasonCode
from paho.mqtt.subscribeoptions import SubscribeOptions

from ...fsutil import atomic_write
from ...paths import Paths
from ...store.models import FeederMqttSettings
from ..intake import Delivery, Intake
from ..runner import FeederError, feeder_main, tls_context

log = logging.getLogger(__name__)

KEEPALIVE = 30  # seconds; a dead link is noticed within twice this
HANDSHAKE_TIMEOUT = 10.0  # TCP/TLS connect, CONNACK, SUBACK
LOOP_TIMEOUT = 0.5  # serve() calls keep_going at least this often (and notices a stop request)
NEVER_EXPIRES = 0xFFFFFFFF  # MQTT 5 Session Expiry Interval meaning "never" (MQTT 5.0 §3.1.2.11.2)
MEMO_NAME = "feeder-mqtt.subscription"

# CONNACK refusals the settings must fix, with the setting to look at (MQTT 5.0 §3.2.2.2;
# paho maps MQTT 3.1.1's return codes 1..5 onto these).
_REFUSAL_HINTS = {
    "Unsupported protocol version": "a Share Group needs a broker that speaks MQTT 5",
    "Client identifier not valid": "check Client ID",
    "Bad user name or password": "check Username and Password",
    "Not authorized": "check Username and Password",
    "Banned": "the broker banned this client",
}
# Broker-side DISCONNECT reasons that name a setting (MQTT 5.0 §3.14.2.1).
_DISCONNECT_HINTS = {
    "Session taken over": "another client connected with the same Client ID",
}


def subscription_filter(settings: Any) -> str:
    """The topic filter to subscribe: the Topic, or the shared subscription of the Share Group."""
    topic, group = settings.topic.strip(), settings.share_group.strip()
    if not topic:
        raise FeederError("Topic is empty")
    if group:
        if any(c in group for c in "/+#"):
            raise FeederError("Share Group must not contain '/', '+' or '#'")
        return f"$share/{group}/{topic}"
    return topic


class MqttConnection:
    """One connected session; made by :class:`MqttConnector`, driven by the feeder runner."""

    def __init__(self, settings: Any, intake: Intake, memo: Path):
        self.settings = settings
        self.intake = intake
        self.memo = memo
        self.where = f"{settings.host}:{settings.port}"
        self.filter = subscription_filter(settings)
        self.fleet = bool(settings.share_group.strip())
        if not settings.client_id:
            raise FeederError("Client ID is empty: a persistent session needs one")
        protocol = mqtt.MQTTv5 if self.fleet else mqtt.MQTTv311
        client = mqtt.Client(CallbackAPIVersion.VERSION2, client_id=settings.client_id, protocol=protocol,
                             clean_session=None if self.fleet else False)
        client.manual_ack_set(True)
        client.connect_timeout = HANDSHAKE_TIMEOUT
        # Writes happen only in serve()'s loop: with this hook set, a publish() from another
        # thread queues its packet and wakes the loop instead of writing to the socket itself.
        client.on_socket_register_write = lambda _client, _userdata, _sock: None
        client.on_connect = self._on_connect
        client.on_disconnect = self._on_disconnect
        client.on_subscribe = self._on_acked
        client.on_unsubscribe = self._on_acked
        client.on_message = self._on_message
        if settings.username:
            client.username_pw_set(settings.username, settings.password or None)
        if settings.ssl:
            try:
                client.tls_set_context(tls_context(settings))
            except (OSError, ssl.SSLError) as exc:
                raise FeederError(f"CA file {settings.ca_file!r} cannot be used: {exc}") from None
        self._client: mqtt.Client | None = client
        self._connack: ReasonCode | None = None
        self._session_present = False
        self._disconnect_reason = ""
        self._acks: dict[int, list[ReasonCode]] = {}
        self._serving = False
        self._early: list[mqtt.MQTTMessage] = []  # delivered before serve(): taken first thing there

    # ---------------------------------------------------------------- paho callbacks (serving thread)

    def _on_connect(self, client, userdata, flags, reason: ReasonCode, properties) -> None:
        self._connack = reason
        self._session_present = bool(flags.session_present)

    def _on_disconnect(self, client, userdata, flags, reason: ReasonCode, properties) -> None:
        if flags.is_disconnect_packet_from_server:
            self._disconnect_reason = str(reason)

    def _on_acked(self, client, userdata, mid: int, reasons: list[ReasonCode], properties) -> None:
        self._acks[mid] = reasons

    def _on_message(self, client, userdata, message: mqtt.MQTTMessage) -> None:
        if self._serving:
            self._take(message)
        else:  # a resumed session delivers right after CONNACK, before the runner can publish answers
            self._early.append(message)

    def _take(self, message: mqtt.MQTTMessage) -> None:
        if not message.payload:
            # How a publisher clears a retained message (MQTT 3.1.1 §3.3.1.3); never a request.
            log.debug("mqtt: skipped an empty message on %s", message.topic[:64])
        elif message.retain:
            # Sent again on every subscribe: taking it would repeat an old request each reconnect.
            log.warning("mqtt: skipped a retained message of %d bytes on %s: requests must not be retained",
                        len(message.payload), message.topic[:64])
        else:
            # DUP: the broker sent this PUBLISH before (MQTT 3.1.1 §3.3.1.1), unacknowledged; the intake counts.
            self.intake.take(message.payload, delivery=Delivery(redelivered=bool(message.dup)))
        if self._client is not None:
            self._client.ack(message.mid, message.qos)  # only now: the request is committed

    # ---------------------------------------------------------------- connecting

    def open(self) -> None:
        client = self._require()
        self._connect(client)
        self._pump(lambda: self._connack is not None, "CONNACK")
        if self._connack is not None and self._connack.is_failure:
            reason = str(self._connack)
            hint = _REFUSAL_HINTS.get(reason)
            if hint is None:  # Server unavailable, Server busy …: the broker may get better
                raise ConnectionError(f"{self.where} refused the connection: {reason}")
            raise FeederError(f"{self.where} refused the connection: {reason} ({hint})")
        previous = self._remembered()
        if previous and previous != self.filter and self._session_present:
            self._unsubscribe(client, previous)
        self._subscribe(client)
        log.info("mqtt: %s session as %r on %s, subscribed to %s (QoS 1, MQTT %s)",
                 "resumed" if self._session_present else "new", self.settings.client_id, self.where,
                 self.filter, "5" if self.fleet else "3.1.1")

    def _connect(self, client: mqtt.Client) -> None:
        extra: dict[str, Any] = {}
        if self.fleet:
            properties = Properties(PacketTypes.CONNECT)
            properties.SessionExpiryInterval = NEVER_EXPIRES
            extra = {"clean_start": False, "properties": properties}
        try:
            client.connect(self.settings.host, self.settings.port, keepalive=KEEPALIVE, **extra)
        except ssl.SSLCertVerificationError as exc:
            raise FeederError(f"TLS: the certificate of {self.where} is not trusted ({exc.verify_message}); "
                              "set the CA file that signed it") from None
        except ssl.SSLError as exc:
            raise FeederError(f"TLS handshake with {self.where} failed: {exc.reason or exc}") from None
        except (OSError, ValueError) as exc:  # refused, unreachable, unknown host, timed out
            raise ConnectionError(f"cannot reach {self.where}: {exc}") from None

    def _subscribe(self, client: mqtt.Client) -> None:
        if self.fleet:
            rc, mid = client.subscribe(self.filter, options=SubscribeOptions(qos=1))
        else:
            rc, mid = client.subscribe(self.filter, qos=1)
        if rc != MQTTErrorCode.MQTT_ERR_SUCCESS or mid is None:
            raise ConnectionError(f"subscribe on {self.where}: {mqtt.error_string(rc)}")
        self._pump(lambda: mid in self._acks, "SUBACK")
        granted = self._acks.pop(mid)[0]
        if granted.is_failure:
            raise FeederError(f"{self.where} refused the subscription to {self.filter}: {granted} "
                              "(check Topic and the user's rights)")
        if granted.value == 0:
            log.warning("mqtt: %s granted only QoS 0 on %s: messages in flight when the link drops are lost",
                        self.where, self.filter)
        if self._remembered() != self.filter:
            atomic_write(self.memo, self.filter.encode(), mode=0o640)

    def _unsubscribe(self, client: mqtt.Client, previous: str) -> None:
        rc, mid = client.unsubscribe(previous)
        if rc != MQTTErrorCode.MQTT_ERR_SUCCESS or mid is None:
            raise ConnectionError(f"unsubscribe on {self.where}: {mqtt.error_string(rc)}")
        self._pump(lambda: mid in self._acks, "UNSUBACK")
        log.info("mqtt: unsubscribed from %s, the filter before the settings changed", previous)
        del self._acks[mid]

    def _remembered(self) -> str:
        try:
            return self.memo.read_text().strip()
        except FileNotFoundError:
            return ""

    def _pump(self, done: Callable[[], bool], what: str) -> None:
        """Run the network loop until *done*; a link that drops or stays silent raises."""
        client = self._require()
        deadline = time.monotonic() + HANDSHAKE_TIMEOUT
        while not done():
            if time.monotonic() > deadline:
                raise ConnectionError(f"{self.where} sent no {what} within {HANDSHAKE_TIMEOUT:g} s")
            rc = client.loop(timeout=0.2)
            if rc != MQTTErrorCode.MQTT_ERR_SUCCESS and not done():
                raise ConnectionError(f"{self.where} closed the link before {what}: {self._lost(rc)}")

    # ---------------------------------------------------------------- the runner's Connection

    def serve(self, keep_going: Callable[[], bool]) -> None:
        client = self._require()
        self._serving = True
        while self._early:
            if not keep_going():
                return
            self._take(self._early.pop(0))
        while keep_going():
            rc = client.loop(timeout=LOOP_TIMEOUT)
            if rc != MQTTErrorCode.MQTT_ERR_SUCCESS:
                reason = self._lost(rc)
                hint = _DISCONNECT_HINTS.get(self._disconnect_reason)
                if hint:
                    raise FeederError(f"{self.where} dropped the link: {reason} ({hint})")
                raise ConnectionError(f"lost the link to {self.where}: {reason}")

    def publish(self, topic: str, body: bytes, extra: dict[str, Any]) -> None:
        client = self._client
        if client is None:
            raise ConnectionError("the MQTT link is closed")
        info = client.publish(topic, body, qos=1)
        if info.rc != MQTTErrorCode.MQTT_ERR_SUCCESS:
            raise ConnectionError(f"publish to {self.where}: {mqtt.error_string(info.rc)}")

    def close(self) -> None:
        """Say goodbye if the link still works; unacknowledged messages stay with the broker."""
        client, self._client = self._client, None
        if client is None:
            return
        # Nothing more is taken (what arrives now stays unacknowledged); paho closes its sockets
        # when the client goes, and these callbacks are what would keep it alive.
        client.on_connect = client.on_disconnect = client.on_message = None
        client.on_subscribe = client.on_unsubscribe = None
        if client.is_connected():
            client.disconnect()
            deadline = time.monotonic() + 1.0
            while client.socket() is not None and time.monotonic() < deadline:
                if client.loop(timeout=0.1) != MQTTErrorCode.MQTT_ERR_SUCCESS:
                    break

    def _require(self) -> mqtt.Client:
        if self._client is None:
            raise ConnectionError("the MQTT link is closed")
        return self._client

    def _lost(self, rc: MQTTErrorCode) -> str:
        return self._disconnect_reason or mqtt.error_string(rc).rstrip(".")


class MqttConnector:
    """The feeder runner's connector; remembers the last subscribed filter under *state_dir*."""

    def __init__(self, state_dir: Path):
        self.memo = state_dir / MEMO_NAME

    def __call__(self, settings: Any, intake: Intake) -> MqttConnection:
        connection = MqttConnection(settings, intake, self.memo)
        try:
            connection.open()
        except BaseException:
            connection.close()
            raise
        return connection


def main() -> int:
    return feeder_main("mqtt", FeederMqttSettings, MqttConnector(Paths.from_env().state_dir))
