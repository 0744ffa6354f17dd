"""The Redis feeder: requests from a pub/sub channel, or from a stream through a consumer group.

Two modes (Redis Settings ``mode``):

``pubsub``
    The spec's way, kept for compatibility: SUBSCRIBE to the channel named by
    Topic; each message is one request. Pub/sub cannot be acknowledged and
    Redis keeps nothing for a subscriber that is not there, so **a request
    published while the device is offline (or reconnecting, or too slow for
    the server's pub/sub output buffer) is lost**. That is why the streams
    mode exists.

``streams``
    Nothing lost: Topic names a stream read through a consumer group
    (``XREADGROUP``, up to :data:`BATCH` entries a read), and an entry is
    acknowledged (``XACK``) only after its request is committed to the store.
    The request is the entry's ``data`` field (the JSON the spec shows); an
    optional ``callback_topic`` field overrides the one in the JSON, so even
    a body that is not JSON, or an entry without ``data``, is answered 1300.
    The group is created at the end of the stream the first time a device
    connects (``XGROUP CREATE <topic> <group> $ MKSTREAM``); an app server
    that must not lose requests sent before any device ever connected
    creates the group itself with ``0`` instead of ``$``. On every connect
    the feeder first finishes the entries it had read but not acknowledged
    (it died, or the link dropped), then claims (``XAUTOCLAIM``) entries
    another consumer left pending for over :data:`RECLAIM_IDLE_MS`, and
    again every :data:`RECLAIM_EVERY` seconds: a device that crashed
    mid-message loses nothing. Delivery is at least once; the request ``id``
    (send-sms, send-email) and ``reference`` (create-otp) make a repeat
    harmless, so app servers should always send them. The feeder never trims
    the request stream: the app server adds with ``MAXLEN``. Fleet mode:
    several devices in one group, each entry goes to one of them; every
    device needs its own consumer name (below).

Username is the spec's "Client ID": when set it is the Redis 6 ACL user the
feeder authenticates as, the name every connection of the feeder carries
(``CLIENT SETNAME``, shown by ``CLIENT LIST``) and the consumer name in the
group. When empty the feeder authenticates as the default user (a
``requirepass`` password, or none) and its name is ``<device name>@<host
name>``. Answers to a request's ``callback_topic`` are PUBLISHed to that
channel in pubsub mode and added (``XADD``, field ``data``) to that stream in
streams mode, through a connection of their own.

Log lines name entry ids and sizes, never bodies.
"""

from __future__ import annotations

import logging
import os
import re
import socket
import ssl
import threading
import time
from typing import Any, Callable

import redis
from redis.backoff import NoBackoff
from redis.retry import Retry

from ... import codes
from ...handler import response
from ...store.models import FeederRedisSettings, GeneralSettings
from ..intake import UNKEPT, Delivery, Intake, Reply
from ..runner import FeederError, feeder_main

log = logging.getLogger(__name__)

MODES = ("pubsub", "streams")
BODY_FIELD = b"data"
CALLBACK_FIELD = b"callback_topic"
BATCH = 32  # entries per XREADGROUP; a batch is handled before the loop looks up again
BLOCK_MS = 1000  # the runner wants keep_going() called at least once a second
RECLAIM_IDLE_MS = 30_000  # an entry pending this long belongs to a consumer that died
RECLAIM_EVERY = 10.0
ANSWER_MAXLEN = 100_000  # callback streams are trimmed (approximately) to this many entries
CONNECT_TIMEOUT = 10.0
SOCKET_TIMEOUT = 15.0  # well above BLOCK_MS: a silent link is noticed, a blocked read is not cut
HEALTH_CHECK = 30  # seconds between PINGs on an idle subscription


def client_id(settings: FeederRedisSettings) -> str:
    """The consumer name: the configured Client ID, else this device's name and host name."""
    if settings.username:
        return settings.username
    return f"{GeneralSettings.load().device_name}@{socket.gethostname()}"


def connection_name(client: str) -> str:
    """*client* as CLIENT SETNAME takes it: printable ASCII without spaces."""
    return re.sub(r"[^!-~]", "-", client)[:128] or "otppi"


def _client(settings: FeederRedisSettings, name: str, retries: int) -> redis.Redis:
    options: dict[str, Any] = {}
    if settings.ssl:
        options = dict(ssl=True, ssl_cert_reqs="required", ssl_check_hostname=True,
                       ssl_ca_certs=settings.ca_file or None, ssl_min_version=ssl.TLSVersion.TLSv1_2)
    return redis.Redis(
        host=settings.host, port=settings.port, username=settings.username or None,
        password=settings.password or None, client_name=connection_name(name),
        socket_connect_timeout=CONNECT_TIMEOUT, socket_timeout=SOCKET_TIMEOUT, health_check_interval=HEALTH_CHECK,
        retry=Retry(NoBackoff(), retries), **options,
    )


def _explain(settings: FeederRedisSettings, exc: Exception) -> Exception:
    """A refusal the settings must fix, said plainly; other errors pass as they are (retried)."""
    where = f"Redis at {settings.host}:{settings.port}"
    who = f"user {settings.username!r}" if settings.username else "the default user"
    if isinstance(exc, redis.AuthenticationError):  # a subclass of ConnectionError: test it first
        if not settings.password:
            return FeederError(f"{where} wants a password (set feeder_redis.password): {exc}")
        return FeederError(f"{where} refused the password of {who}: {exc}")
    cause = exc.__context__
    if isinstance(cause, ssl.SSLCertVerificationError):
        hint = f"is it signed by {settings.ca_file}?" if settings.ca_file else "set ca_file to the CA that signed it"
        return FeederError(f"TLS: the certificate of {where} could not be verified ({cause.verify_message}); {hint}")
    if isinstance(cause, ssl.SSLError):
        return FeederError(f"TLS handshake with {where} failed: {cause.reason or cause}")
    if isinstance(exc, redis.ResponseError):
        if str(exc).startswith("NOPERM"):
            return FeederError(f"{where}: {who} may not do this: {exc}")
        if str(exc).startswith("unknown command"):  # XAUTOCLAIM came with Redis 6.2
            return FeederError(f"{where} is too old for the streams mode (it needs Redis 6.2 or later): {exc}")
    return exc


class _RedisConnection:
    """What both modes share: the consumer link, a separate publishing link, closing."""

    def __init__(self, settings: FeederRedisSettings, intake: Intake, name: str):
        self.settings = settings
        self.intake = intake
        self.topic = settings.topic
        self.name = name
        # No retries on the consumer link: a read cut short may have delivered entries; the
        # runner's reconnect re-reads them (streams) and records the disconnect either way.
        self.consumer = _client(settings, name, retries=0)
        self.publisher = _client(settings, name, retries=2)
        # The courier may publish while the runner closes: a closed publisher must not connect again.
        self._publishing = threading.Lock()
        self._closed = False

    def start(self) -> None:
        try:
            self.consumer.ping()
            self._start()
        except redis.RedisError as exc:
            raise _explain(self.settings, exc) from exc

    def _start(self) -> None:
        raise NotImplementedError

    def publish(self, topic: str, body: bytes, extra: dict[str, Any]) -> None:
        with self._publishing:
            if self._closed:
                raise ConnectionError("the Redis connection is closed")
            self._publish(topic, body)

    def _publish(self, topic: str, body: bytes) -> None:
        raise NotImplementedError

    def close(self) -> None:
        with self._publishing:
            self._closed = True
            self.publisher.close()
        self.consumer.close()


class PubSubConnection(_RedisConnection):
    """The spec's channel: at most once (see the module docstring)."""

    def _start(self) -> None:
        self.pubsub = self.consumer.pubsub()
        self.pubsub.subscribe(self.topic)
        deadline = time.monotonic() + CONNECT_TIMEOUT
        while time.monotonic() < deadline:  # connected means subscribed: nothing published after is missed
            message = self.pubsub.get_message(timeout=1.0)
            if message is not None and message["type"] == "subscribe":
                return
        raise ConnectionError(f"Redis did not confirm the subscription to {self.topic[:64]}")

    def serve(self, keep_going: Callable[[], bool]) -> None:
        while keep_going():
            message = self.pubsub.get_message(timeout=1.0)
            if message is not None and message["type"] == "message":
                self.intake.take(message["data"], delivery=UNKEPT)

    def _publish(self, topic: str, body: bytes) -> None:
        self.publisher.publish(topic, body)

    def close(self) -> None:
        pubsub = getattr(self, "pubsub", None)
        if pubsub is not None:
            pubsub.close()
        super().close()


class StreamConnection(_RedisConnection):
    """A consumer in a group: at least once, acknowledged after the store has the request."""

    def __init__(self, settings: FeederRedisSettings, intake: Intake, name: str):
        super().__init__(settings, intake, name)
        self.group = settings.group or "otppi"

    def _start(self) -> None:
        self._ensure_group()

    def _ensure_group(self) -> None:
        try:
            self.consumer.xgroup_create(self.topic, self.group, id="$", mkstream=True)
            log.info("created consumer group %s on stream %s", self.group[:64], self.topic[:64])
        except redis.ResponseError as exc:
            message = str(exc)
            if message.startswith("BUSYGROUP"):
                return
            if message.startswith("WRONGTYPE"):
                raise FeederError(f"the Redis key {self.topic[:64]!r} exists and is not a stream; "
                                  "choose another topic or the pubsub mode") from exc
            raise

    def serve(self, keep_going: Callable[[], bool]) -> None:
        try:
            if not self._finish_own_pending(keep_going):
                return
            next_reclaim = 0.0
            while keep_going():
                if time.monotonic() >= next_reclaim:
                    if not self._reclaim(keep_going):
                        return
                    next_reclaim = time.monotonic() + RECLAIM_EVERY
                try:
                    answer = self.consumer.xreadgroup(self.group, self.name, {self.topic: ">"}, count=BATCH,
                                                      block=BLOCK_MS)
                except redis.ResponseError as exc:
                    if not str(exc).startswith("NOGROUP"):
                        raise
                    log.warning("stream %s or its group went away; creating them again", self.topic[:64])
                    self._ensure_group()
                    continue
                for _stream, entries in answer or ():
                    self._take_all(entries)
        except redis.RedisError as exc:
            raise _explain(self.settings, exc) from exc

    # Pending entries are read again and claimed one at a time: each read counts as a delivery of the
    # entries it returns, and an entry that kills the feeder must not take the count of the entries
    # behind it up with its own (they would be dead-lettered without ever having been tried).

    def _finish_own_pending(self, keep_going: Callable[[], bool]) -> bool:
        """Entries this consumer read before a crash or a dropped link but never acknowledged."""
        last, count = "0", 0
        while keep_going():
            answer = self.consumer.xreadgroup(self.group, self.name, {self.topic: last}, count=1)
            entries = answer[0][1] if answer else []
            if not entries:
                if count:
                    log.info("finished %d entries read before the last disconnect", count)
                return True
            self._take_all(entries, self._deliveries(entries))
            last, count = entries[-1][0], count + len(entries)
        return False

    def _reclaim(self, keep_going: Callable[[], bool]) -> bool:
        """Claim entries other consumers left pending too long (they died), and handle them."""
        start, count = "0-0", 0
        while keep_going():
            answer = self.consumer.xautoclaim(self.topic, self.group, self.name, RECLAIM_IDLE_MS, start_id=start,
                                              count=1)
            start, entries = answer[0], answer[1]
            self._take_all(entries, self._deliveries(entries))
            count += len(entries)
            if start in (b"0-0", "0-0"):
                if count:
                    log.info("claimed %d entries another consumer left pending over %d s", count,
                             RECLAIM_IDLE_MS // 1000)
                return True
        return False

    def _deliveries(self, entries: list[tuple[bytes, Any]]) -> dict[bytes, int]:
        """How many times Redis delivered each of these pending entries (XPENDING's delivery counter).

        Reading pending entries again (XREADGROUP with an id) and claiming them (XAUTOCLAIM) both
        count as deliveries, so an entry that kills the feeder each time it is handled is seen
        coming back here, and dead-lettered by the intake after a few times.
        """
        if not entries:
            return {}
        first, last = entries[0][0], entries[-1][0]  # entries come in id order
        rows = self.consumer.xpending_range(self.topic, self.group, min=first, max=last, count=len(entries),
                                            consumername=self.name)
        return {row["message_id"]: row["times_delivered"] for row in rows}

    def _take_all(self, entries: list[tuple[bytes, dict[bytes, bytes] | None]],
                  deliveries: dict[bytes, int] | None = None) -> None:
        """Handle a read's entries, then acknowledge those the store has, in one XACK.

        One XACK per read rather than per entry: on a Redis that fsyncs its
        append-only file on every write, that is one fsync per read instead of
        one per request (measured: 2-3 times the rate). An entry is still
        acknowledged only after its request is committed; a crash before the
        XACK hands the read back (at least once, see the module docstring).
        """
        done: list[bytes] = []
        try:
            for entry_id, fields in entries:
                self._take(entry_id, fields or {}, (deliveries or {}).get(entry_id, 1))
                done.append(entry_id)
        finally:
            if done:
                self.consumer.xack(self.topic, self.group, *done)

    def _take(self, entry_id: bytes, fields: dict[bytes, bytes], deliveries: int) -> None:
        if not fields:
            return  # trimmed or deleted while pending: nothing left to do but acknowledge it
        reply = None
        callback = fields.get(CALLBACK_FIELD)
        if callback:
            topic = callback.decode("utf-8", "replace")
            reply = Reply(topic) if len(topic) <= 255 else None
        body = fields.get(BODY_FIELD)
        if body is not None:
            self.intake.take(body, reply, Delivery(count=deliveries, ref=f"{entry_id.decode()} of {self.topic[:64]}"))
            return
        log.warning("entry %s of %s has no %s field (it has %d fields); acknowledged", entry_id.decode(),
                    self.topic[:64], BODY_FIELD.decode(), len(fields))
        if reply is not None and self.intake.courier is not None:
            message = f"the stream entry has no {BODY_FIELD.decode()} field"
            self.intake.courier.send(reply, response("", codes.MALFORMED, None, message))

    def _publish(self, topic: str, body: bytes) -> None:
        self.publisher.xadd(topic, {BODY_FIELD: body}, maxlen=ANSWER_MAXLEN, approximate=True)


def connect(settings: FeederRedisSettings, intake: Intake) -> _RedisConnection:
    """The runner's connector: a connected, subscribed (or grouped) :class:`_RedisConnection`."""
    mode = settings.mode.strip().lower()
    if mode not in MODES:
        raise FeederError(f"feeder_redis.mode must be one of {', '.join(MODES)}, not {settings.mode[:32]!r}")
    if not settings.topic:
        raise FeederError("feeder_redis.topic is empty")
    if settings.ssl and settings.ca_file and not os.access(settings.ca_file, os.R_OK):
        raise FeederError(f"the CA file {settings.ca_file} cannot be read")
    cls = PubSubConnection if mode == "pubsub" else StreamConnection
    connection = cls(settings, intake, client_id(settings))
    try:
        connection.start()
    except BaseException:
        connection.close()
        raise
    return connection


def main(argv: list[str] | None = None) -> int:
    return feeder_main("redis", FeederRedisSettings, connect)
