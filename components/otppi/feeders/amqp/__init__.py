"""The RabbitMQ feeder: one durable queue named by the topic, acknowledged only after commit.

Nothing is lost: the queue is durable, a message is acknowledged only after
:meth:`Intake.take` returned (the request is in the store, or was refused),
and prefetch bounds what a crash can hand back to the broker for redelivery;
a redelivered request is answered from the store by its ``id`` or
``reference``, never sent twice. Several devices consuming one queue are
competing consumers (fleet mode): RabbitMQ gives each message to one of them.

Answers go to the request's ``callback_topic`` or to the AMQP ``reply_to``
property (with its ``correlation_id``), published on the default exchange,
so the routing key is the queue name; they are persistent.

pika's BlockingConnection belongs to the thread that made it: answers
published from the courier's thread are handed over with
``add_callback_threadsafe``.
"""

from __future__ import annotations

import logging
import socket
import ssl
import threading
from typing import Any, Callable

import pika
from pika import exceptions as amqp
from pika.adapters.blocking_connection import BlockingChannel

from ...store.models import FeederAmqpSettings
from ..intake import Delivery, Intake, Reply
from ..runner import FeederError, tls_context

log = logging.getLogger(__name__)

HEARTBEAT = 30  # seconds; the serve loop turns every TURN, well inside it
TURN = 1.0
PUBLISH_WAIT = 5.0  # how long another thread waits for its answer to go out
MAX_PREFETCH = 65535
PRECONDITION_FAILED, ACCESS_REFUSED = 406, 403


def parameters(settings: FeederAmqpSettings) -> pika.ConnectionParameters:
    options: dict[str, Any] = {}
    if settings.username:
        options["credentials"] = pika.PlainCredentials(settings.username, settings.password)
    if settings.ssl:
        options["ssl_options"] = pika.SSLOptions(tls_context(settings), server_hostname=settings.host)
    return pika.ConnectionParameters(
        host=settings.host, port=settings.port, virtual_host=settings.virtual_host or "/",
        heartbeat=HEARTBEAT, blocked_connection_timeout=60, connection_attempts=1, socket_timeout=10,
        client_properties={"connection_name": f"otppi feeder-amqp {socket.gethostname()}"}, **options,
    )


def _cause(exc: BaseException, kind: type[BaseException]) -> BaseException | None:
    """The error of *kind* behind a failed connection (pika wraps it in args, or in ``exception``)."""
    seen: list[BaseException] = [exc]
    while seen:
        item = seen.pop()
        if isinstance(item, kind):
            return item
        seen.extend(arg for arg in getattr(item, "args", ()) if isinstance(arg, BaseException))
        seen.extend(e for e in (item.__cause__, item.__context__, getattr(item, "exception", None)) if e)
    return None


def open_connection(settings: FeederAmqpSettings) -> pika.BlockingConnection:
    """Connect; failures the settings must fix become :class:`FeederError`; the rest are retried as they come."""
    where = f"{settings.host}:{settings.port}"
    try:
        return pika.BlockingConnection(parameters(settings))
    except (amqp.ProbableAuthenticationError, amqp.AuthenticationError) as exc:
        raise FeederError(f"RabbitMQ at {where} refused the username or password of user "
                          f"{settings.username or 'guest'!r}") from exc
    except amqp.ProbableAccessDeniedError as exc:
        raise FeederError(f"RabbitMQ at {where} denied user {settings.username or 'guest'!r} access to virtual "
                          f"host {settings.virtual_host!r}") from exc
    except (amqp.AMQPConnectionError, ssl.SSLError) as exc:  # pika raises a failed handshake's error as it is
        failure = _cause(exc, ssl.SSLError)
        if isinstance(failure, ssl.SSLCertVerificationError):
            raise FeederError(f"TLS to {where}: the server certificate did not verify "
                              f"({failure.verify_message}); CA file {settings.ca_file or '(system CAs)'}") from exc
        if failure is not None:
            raise FeederError(f"TLS to {where} failed: {failure}") from exc
        reason = _cause(exc, OSError) or exc
        raise ConnectionError(f"cannot connect to RabbitMQ at {where}: {reason or type(reason).__name__}") from exc


def declare_queue(connection: pika.BlockingConnection, queue: str) -> BlockingChannel:
    """A durable queue named by the topic; one that exists with other arguments is used as it is.

    A queue an operator made with arguments of their own (a quorum queue, a
    length limit) refuses our plain declaration with PRECONDITION_FAILED,
    which closes the channel: open another and check the queue passively.
    """
    if not queue:
        raise FeederError("the topic (the queue name) is empty")
    channel = connection.channel()
    try:
        channel.queue_declare(queue, durable=True)
    except amqp.ChannelClosedByBroker as exc:
        if exc.reply_code == ACCESS_REFUSED:
            raise FeederError(f"RabbitMQ refused access to queue {queue!r}: {exc.reply_text}") from exc
        if exc.reply_code != PRECONDITION_FAILED:
            raise
        log.info("queue %r exists with arguments of its own; consuming it as it is", queue)
        channel = connection.channel()
        channel.queue_declare(queue, passive=True)
    return channel


def delivery(method: Any, properties: pika.BasicProperties) -> Delivery:
    """A quorum queue counts deliveries (``x-delivery-count``: the earlier ones); a classic queue only flags
    a message delivered before (``redelivered``), and the intake's ledger counts those."""
    previous = (properties.headers or {}).get("x-delivery-count")
    if isinstance(previous, int) and not isinstance(previous, bool) and previous >= 0:
        return Delivery(count=previous + 1)
    return Delivery(redelivered=bool(method.redelivered))


class AmqpConnection:
    """One connection and one consuming channel; :meth:`serve` runs on the thread that connected."""

    def __init__(self, connection: pika.BlockingConnection, channel: BlockingChannel, queue: str,
                 prefetch: int, intake: Intake):
        self._connection = connection
        self._channel = channel
        self._queue = queue
        self._intake = intake
        self._owner = threading.get_ident()
        self._cancelled = False
        channel.basic_qos(prefetch_count=min(max(prefetch, 1), MAX_PREFETCH))
        channel.add_on_cancel_callback(self._on_cancel)

    def serve(self, keep_going: Callable[[], bool]) -> None:
        self._channel.basic_consume(self._queue, self._on_message, auto_ack=False)
        try:
            while keep_going():
                self._connection.process_data_events(time_limit=TURN)
                if self._cancelled:
                    raise ConnectionError(f"RabbitMQ cancelled the consumer of queue {self._queue!r} (deleted?)")
        except (amqp.AMQPConnectionError, amqp.AMQPChannelError) as exc:
            raise ConnectionError(f"lost the connection to RabbitMQ: {exc!r}") from exc

    def _on_cancel(self, frame: Any) -> None:
        self._cancelled = True

    def _on_message(self, channel: BlockingChannel, method: Any, properties: pika.BasicProperties,
                    body: bytes) -> None:
        reply = None
        if properties.reply_to:
            extra = (("correlation_id", properties.correlation_id),) if properties.correlation_id else ()
            reply = Reply(properties.reply_to, extra)
        # take() raises only when the store failed: the message stays unacknowledged, serve raises, the
        # runner reconnects after its backoff and the broker delivers the message again.
        self._intake.take(body, reply, delivery(method, properties))
        channel.basic_ack(method.delivery_tag)

    def publish(self, topic: str, body: bytes, extra: dict[str, Any]) -> None:
        if threading.get_ident() == self._owner:
            self._publish_now(topic, body, extra)
            return
        done = threading.Event()
        failure: list[BaseException] = []

        def publish_here() -> None:
            try:
                self._publish_now(topic, body, extra)
            except Exception as exc:  # handed back to the caller's thread below
                failure.append(exc)
            finally:
                done.set()

        self._connection.add_callback_threadsafe(publish_here)
        if not done.wait(PUBLISH_WAIT):
            raise TimeoutError(f"the connection was busy for {PUBLISH_WAIT:g} s; the answer may still go out")
        if failure:
            raise failure[0]

    def _publish_now(self, topic: str, body: bytes, extra: dict[str, Any]) -> None:
        properties = pika.BasicProperties(content_type="application/json",
                                          delivery_mode=pika.DeliveryMode.Persistent,
                                          correlation_id=extra.get("correlation_id"))
        self._channel.basic_publish(exchange="", routing_key=topic, body=body, properties=properties)

    def close(self) -> None:
        if self._connection.is_open:
            self._connection.close()


def connect(settings: FeederAmqpSettings, intake: Intake) -> AmqpConnection:
    logging.getLogger("pika").setLevel(logging.CRITICAL)  # the runner says what failed, once
    connection = open_connection(settings)
    try:
        channel = declare_queue(connection, settings.topic)
        return AmqpConnection(connection, channel, settings.topic, settings.prefetch, intake)
    except BaseException:
        if connection.is_open:
            connection.close()
        raise
