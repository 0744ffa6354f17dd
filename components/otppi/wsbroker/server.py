"""The WebSocket broker: the spec's WSMessageBroker handshake, then fan-out by topic.

A client opens ``GET <path>?topic=<topic>`` with HTTP Basic credentials (the
spec's Scenario 2, "Handhakes"). Everything is checked before the upgrade:
a wrong path is answered 404, a missing topic 400, missing or wrong
credentials 401, a full server 503. Once in, every message a client sends is
passed to every other client subscribed to the same topic, never back to
the sender and never to another topic. The broker stores nothing: a message
with no one else on its topic is dropped, as WSMessageBroker does.

Memory stays bounded: messages over ``max_size`` close the sender with 1009
(the library enforces it), a subscriber whose unsent data grows past
``slow_limit`` is closed with 1013 instead of being buffered for, and the
number of clients is capped. Logs name peers, users and topics, never a
message body.
"""

from __future__ import annotations

import asyncio
import http
import logging
import re
import signal
import ssl
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import parse_qs, urlsplit

from websockets.asyncio.server import ServerConnection, broadcast, serve
from websockets.datastructures import Headers
from websockets.exceptions import ConnectionClosed, InvalidHeader
from websockets.headers import build_www_authenticate_basic, parse_authorization_basic
from websockets.http11 import Request, Response

from .users import Users

log = logging.getLogger("otppi.wsbroker")

REALM = "otppi-wsbroker"
MAX_TOPIC = 255
_TOPIC_BAD = re.compile(r"[\x00-\x1f\x7f]")


@dataclass(frozen=True)
class Options:
    host: str = "127.0.0.1"
    port: int = 8000
    path: str = "/ws"
    max_size: int = 64 * 1024
    max_clients: int = 1000
    # Unsent bytes a subscriber may hold before it is closed as too slow.
    slow_limit: int = 1024 * 1024
    tls_cert: Path | None = None
    tls_key: Path | None = None


def topic_of(target: str) -> str | None:
    """The ``topic`` query parameter of a request target, when it is usable."""
    values = parse_qs(urlsplit(target).query, keep_blank_values=True).get("topic")
    if not values:
        return None
    topic = values[0]
    if not 0 < len(topic) <= MAX_TOPIC or _TOPIC_BAD.search(topic):
        return None
    return topic


def peer_of(connection: ServerConnection) -> str:
    address = connection.remote_address
    return f"{address[0]}:{address[1]}" if isinstance(address, tuple) and len(address) >= 2 else str(address)


def server_tls(cert: Path, key: Path) -> ssl.SSLContext:
    context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    context.minimum_version = ssl.TLSVersion.TLSv1_2
    context.load_cert_chain(cert, key)
    return context


class Broker:
    """Subscriptions by topic, the handshake checks, and the fan-out."""

    def __init__(self, users: Users, options: Options):
        self.users = users
        self.options = options
        self.topics: dict[str, set[ServerConnection]] = {}
        self.clients = 0
        self._closing: set[asyncio.Task] = set()

    # ---------------------------------------------------------------- handshake

    @staticmethod
    def _refuse(connection: ServerConnection, status: http.HTTPStatus, text: str, note: str = "") -> Response:
        response = connection.respond(status, text)
        if status == http.HTTPStatus.UNAUTHORIZED:
            response.headers["WWW-Authenticate"] = build_www_authenticate_basic(REALM)
        log.info("refused %s: %d %s%s", peer_of(connection), status.value, text.strip(), note)
        return response

    async def check_handshake(self, connection: ServerConnection, request: Request) -> Response | None:
        """``process_request`` hook: None lets the upgrade go on, a response refuses it."""
        if urlsplit(request.path).path != self.options.path:
            return self._refuse(connection, http.HTTPStatus.NOT_FOUND, "No broker at this path\n")
        if topic_of(request.path) is None:
            return self._refuse(connection, http.HTTPStatus.BAD_REQUEST, "The topic parameter is missing\n")
        if self.clients >= self.options.max_clients:
            return self._refuse(connection, http.HTTPStatus.SERVICE_UNAVAILABLE, "Too many clients\n")
        return await self._check_credentials(connection, request.headers)

    async def _check_credentials(self, connection: ServerConnection, headers: Headers) -> Response | None:
        header = headers.get("Authorization")
        if header is None:
            return self._refuse(connection, http.HTTPStatus.UNAUTHORIZED, "Missing credentials\n")
        try:
            user, password = parse_authorization_basic(header)
        except InvalidHeader:
            return self._refuse(connection, http.HTTPStatus.UNAUTHORIZED, "Unsupported credentials\n")
        # argon2 takes tens of milliseconds on a miss: keep the event loop serving meanwhile.
        if not await asyncio.to_thread(self.users.verify, user, password):
            return self._refuse(connection, http.HTTPStatus.UNAUTHORIZED, "Invalid credentials\n",
                                f" (user {user[:64]!r})")
        connection.username = user
        return None

    # ---------------------------------------------------------------- subscribers

    async def serve_client(self, connection: ServerConnection) -> None:
        topic = topic_of(connection.request.path)
        assert topic is not None  # check_handshake refused it otherwise
        peer = peer_of(connection)
        if self.clients >= self.options.max_clients:  # several handshakes passed the check at once
            await connection.close(1013, "too many clients")
            return
        self.clients += 1
        self.topics.setdefault(topic, set()).add(connection)
        log.info("%s (user %s) subscribed to %r; %d client(s)", peer, connection.username, topic, self.clients)
        try:
            async for message in connection:
                self._fan_out(connection, topic, message)
        except ConnectionClosed:
            pass  # reported below from the close codes
        finally:
            self.clients -= 1
            subscribers = self.topics.get(topic)
            if subscribers is not None:
                subscribers.discard(connection)
                if not subscribers:
                    del self.topics[topic]
        log.info("%s left %r (%s)", peer, topic, _close_of(connection))

    def _fan_out(self, sender: ServerConnection, topic: str, message: str | bytes) -> None:
        receivers = []
        for connection in list(self.topics.get(topic, ())):  # _drop_slow changes the set
            if connection is sender:
                continue
            if connection.transport.get_write_buffer_size() > self.options.slow_limit:
                self._drop_slow(topic, connection)
            else:
                receivers.append(connection)
        broadcast(receivers, message)
        log.debug("%d bytes on %r to %d subscriber(s)", len(message), topic, len(receivers))

    def _drop_slow(self, topic: str, connection: ServerConnection) -> None:
        self.topics.get(topic, set()).discard(connection)
        log.warning("closing %s on %r: it reads too slowly", peer_of(connection), topic)
        task = asyncio.get_running_loop().create_task(connection.close(1013, "too slow"))
        self._closing.add(task)
        task.add_done_callback(self._closing.discard)


def _close_of(connection: ServerConnection) -> str:
    sent, received = connection.protocol.close_sent, connection.protocol.close_rcvd
    frame = sent if sent is not None and sent.code != 1000 else received or sent  # ours when it says more
    if frame is None:
        return "connection lost"
    return f"close {frame.code} {frame.reason}".rstrip()


async def run(users: Users, options: Options) -> None:
    """Serve until SIGTERM or SIGINT, then close every client with 1001 (going away)."""
    context = server_tls(options.tls_cert, options.tls_key) if options.tls_cert and options.tls_key else None
    broker = Broker(users, options)
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for signum in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(signum, stop.set)
    async with serve(
        broker.serve_client, options.host, options.port,
        process_request=broker.check_handshake,
        max_size=options.max_size,
        # JSON requests are small; per-connection deflate state would cost more memory than it saves.
        compression=None,
        ssl=context,
        server_header=REALM,
    ):
        log.info("listening on %s://%s:%d%s; %d user(s)", "wss" if context else "ws", options.host, options.port,
                 options.path, len(users))
        await stop.wait()
        log.info("stopping; closing %d client(s)", broker.clients)
    log.info("stopped")
