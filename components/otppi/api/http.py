"""A small HTTP/1.1 server on asyncio, made for the REST API's one shape of traffic.

A REST request waits for its SMS to be sent (up to API Settings' Wait
Timeout). On a threaded WSGI server every waiting request holds a thread, so
a burst of clients either waits in the listen backlog past its deadline or is
reset. Here a waiting request is a coroutine and costs a few kilobytes; the
blocking work (the store, argon2) runs on small thread pools beside the loop.

What it speaks: HTTP/1.1 and 1.0, keep-alive and pipelining (answered in
order), ``Content-Length`` and ``chunked`` bodies, ``Expect: 100-continue``,
TLS through the loop's ``ssl`` support. What it refuses, and how:

* a request head over :data:`MAX_HEAD` bytes or :data:`MAX_HEADERS` lines: 431;
* a malformed request line or header, both ``Content-Length`` and
  ``Transfer-Encoding``, a coding other than ``chunked``, two different
  lengths, a bad chunk: 400, and the connection is closed (no smuggling);
* a body over the application's limit: 413, and the connection is closed;
* a client slower than :class:`Limits` allow to send its head or its body:
  408 and closed; an idle keep-alive connection is closed;
* connections beyond ``Limits.max_connections``: 503 at once, closed.
"""

from __future__ import annotations

import asyncio
import email.utils
import logging
import ssl
import time
from dataclasses import dataclass, field
from typing import Awaitable, Callable

log = logging.getLogger(__name__)

MAX_HEAD = 16 * 1024
MAX_HEADERS = 100


@dataclass(frozen=True)
class Limits:
    head_s: float = 10.0  # to send a request head, from connecting
    body_s: float = 10.0  # to send a body, once the application asks for it
    idle_s: float = 30.0  # between requests of a keep-alive connection
    write_s: float = 10.0  # for a client to take an answer
    tls_handshake_s: float = 10.0
    max_connections: int = 2048
    #: A burst of new connections waits in the listen backlog instead of being reset
    #: (the kernel caps it at net.core.somaxconn, 4096 on current kernels).
    backlog: int = 4096

REASONS = {
    100: "Continue", 200: "OK", 400: "Bad Request", 401: "Unauthorized", 404: "Not Found",
    405: "Method Not Allowed", 408: "Request Timeout", 411: "Length Required", 413: "Content Too Large", 417: "Expectation Failed",
    431: "Request Header Fields Too Large", 500: "Internal Server Error", 501: "Not Implemented",
    503: "Service Unavailable", 505: "HTTP Version Not Supported",
}

_TOKEN = frozenset(b"!#$%&'*+-.^_`|~0123456789abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ")


class HttpError(Exception):
    """A request the server answers itself with *status*, then closes the connection."""

    def __init__(self, status: int, message: str):
        super().__init__(message)
        self.status = status
        self.message = message


class BodyTooLarge(Exception):
    pass


@dataclass
class Request:
    method: str
    path: str  # without the query
    version: str  # "HTTP/1.1" or "HTTP/1.0"
    headers: dict[str, str]  # names lower-cased
    arrived: float  # time.monotonic() when the head was complete: deadlines run from here
    peer: str
    _body: "Body | None" = field(default=None, repr=False)

    async def body(self, limit: int) -> bytes:
        """The whole body, up to *limit* bytes; :class:`BodyTooLarge` past it."""
        assert self._body is not None
        return await self._body.read(limit)


@dataclass
class Response:
    status: int
    body: bytes = b""
    headers: list[tuple[str, str]] = field(default_factory=list)
    content_type: str = "application/json"


App = Callable[[Request], Awaitable[Response]]


class Body:
    """A request body, read on demand so the application can refuse a request before reading it."""

    def __init__(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter, length: int | None,
                 chunked: bool, expect_continue: bool, timeout: float):
        self._reader, self._writer, self._timeout = reader, writer, timeout
        self._length, self._chunked, self._continue = length, chunked, expect_continue
        self.consumed = length == 0 and not chunked
        self.broken = False  # the stream is no longer at a request boundary

    async def read(self, limit: int) -> bytes:
        if self.consumed:
            return b""
        if self._length is not None and self._length > limit:
            self.broken = True
            raise BodyTooLarge()
        if self._continue:
            self._writer.write(b"HTTP/1.1 100 Continue\r\n\r\n")
        self.broken = True  # until the whole body is in
        try:
            if self._chunked:
                async with asyncio.timeout(self._timeout):
                    data = await self._read_chunked(limit)
            else:
                async with asyncio.timeout(self._timeout):
                    data = await self._reader.readexactly(self._length or 0)
        except TimeoutError:
            raise HttpError(408, "the request body did not arrive in time") from None
        except asyncio.IncompleteReadError:
            raise ConnectionResetError("the client closed the connection inside the body") from None
        self.broken = False
        self.consumed = True
        return data

    async def _read_chunked(self, limit: int) -> bytes:
        parts: list[bytes] = []
        size = 0
        while True:
            line = await self._line()
            text = line.split(b";", 1)[0].strip()
            if not text or len(text) > 8 or any(c not in b"0123456789abcdefABCDEF" for c in text):
                raise HttpError(400, "bad chunk size")
            length = int(text, 16)
            if length == 0:
                break
            size += length
            if size > limit:
                raise BodyTooLarge()
            parts.append(await self._reader.readexactly(length))
            if await self._reader.readexactly(2) != b"\r\n":
                raise HttpError(400, "chunk not ended by CRLF")
        trailers = 0
        while await self._line():  # trailer fields, ignored, up to the empty line
            trailers += 1
            if trailers > MAX_HEADERS:
                raise HttpError(431, "too many trailer fields")
        return b"".join(parts)

    async def _line(self) -> bytes:
        try:
            line = await self._reader.readuntil(b"\r\n")
        except asyncio.LimitOverrunError:
            raise HttpError(400, "chunk line too long") from None
        if len(line) > 1024:
            raise HttpError(400, "chunk line too long")
        return line[:-2]


def _parse_head(head: bytes, peer: str, arrived: float) -> tuple[Request, int | None, bool, bool]:
    """(request, content length, chunked, expect 100-continue) from the bytes before the blank line."""
    lines = head.split(b"\r\n")
    try:
        method_b, target_b, version_b = lines[0].split(b" ")
    except ValueError:
        raise HttpError(400, "malformed request line") from None
    if version_b not in (b"HTTP/1.1", b"HTTP/1.0"):
        if version_b.startswith(b"HTTP/"):
            raise HttpError(505, "only HTTP/1.1 and HTTP/1.0 are spoken here")
        raise HttpError(400, "malformed request line")
    if not method_b or any(c not in _TOKEN for c in method_b):
        raise HttpError(400, "malformed method")
    if not target_b.startswith(b"/") or any(c <= 0x20 or c >= 0x7F for c in target_b):
        raise HttpError(400, "the request target must be a path")
    if len(lines) - 1 > MAX_HEADERS:
        raise HttpError(431, f"more than {MAX_HEADERS} header fields")
    headers: dict[str, str] = {}
    lengths: set[bytes] = set()
    for line in lines[1:]:
        name, sep, value = line.partition(b":")
        if not sep or not name or any(c not in _TOKEN for c in name):
            raise HttpError(400, "malformed header field")
        if any(c < 0x20 and c != 0x09 or c == 0x7F for c in value):
            raise HttpError(400, "control characters in a header field")
        key = name.decode("ascii").lower()
        text = value.strip(b" \t").decode("latin-1")
        if key == "content-length":
            lengths.update(v.strip() for v in value.split(b","))
        if key in headers:
            if key in ("authorization", "host", "transfer-encoding", "content-type"):
                raise HttpError(400, f"{key} given twice")
            headers[key] = f"{headers[key]}, {text}"
        else:
            headers[key] = text
    version = version_b.decode("ascii")
    if version == "HTTP/1.1" and "host" not in headers:
        raise HttpError(400, "Host is required in HTTP/1.1")
    chunked = False
    length: int | None = 0
    if "transfer-encoding" in headers:
        if lengths:
            raise HttpError(400, "both Content-Length and Transfer-Encoding")
        if headers["transfer-encoding"].lower() != "chunked" or version == "HTTP/1.0":
            raise HttpError(501, "only the chunked transfer coding is understood")
        chunked, length = True, None
    elif lengths:
        if len(lengths) != 1:
            raise HttpError(400, "conflicting Content-Length values")
        value = lengths.pop()
        if not value.isdigit() or len(value) > 12:
            raise HttpError(400, "malformed Content-Length")
        length = int(value)
    expect = headers.get("expect", "").lower()
    if expect and expect != "100-continue":
        raise HttpError(417, "only Expect: 100-continue is understood")
    target = target_b.decode("ascii")
    path = target.split("?", 1)[0]
    request = Request(method_b.decode("ascii"), path, version, headers, arrived, peer)
    return request, length, chunked, bool(expect) and version == "HTTP/1.1"


def _keep_alive(request: Request) -> bool:
    tokens = {t.strip().lower() for t in request.headers.get("connection", "").split(",")}
    if request.version == "HTTP/1.0":
        return "keep-alive" in tokens
    return "close" not in tokens


def render(response: Response, *, keep_alive: bool, head_only: bool = False, version: str = "HTTP/1.1") -> bytes:
    lines = [f"{version} {response.status} {REASONS.get(response.status, 'Unknown')}",
             f"Date: {email.utils.formatdate(usegmt=True)}",
             "Server: otppi",
             f"Content-Type: {response.content_type}",
             f"Content-Length: {len(response.body)}"]
    lines += [f"{name}: {value}" for name, value in response.headers]
    if not keep_alive:
        lines.append("Connection: close")
    elif version == "HTTP/1.0":
        lines.append("Connection: keep-alive")
    head = ("\r\n".join(lines) + "\r\n\r\n").encode("latin-1")
    return head if head_only else head + response.body


class HttpServer:
    """One listener (host, port, optional TLS) serving *app*; started and stopped on a running loop."""

    def __init__(self, app: App, error: Callable[[int, str], Response], host: str, port: int, *,
                 tls: ssl.SSLContext | None = None, limits: Limits = Limits()):
        self.app, self.error = app, error
        self.host, self.port, self.tls, self.limits = host, port, tls, limits
        self._server: asyncio.Server | None = None
        self._connections: set[asyncio.Task] = set()
        self._busy: set[asyncio.Task] = set()  # connections with a request being answered

    @property
    def bound_port(self) -> int:
        assert self._server is not None
        return self._server.sockets[0].getsockname()[1]

    @property
    def connections(self) -> int:
        return len(self._connections)

    async def start(self) -> None:
        self._server = await asyncio.start_server(
            self._serve, self.host, self.port, ssl=self.tls, backlog=self.limits.backlog, limit=MAX_HEAD,
            reuse_address=True, ssl_handshake_timeout=self.limits.tls_handshake_s if self.tls else None)

    async def stop(self, grace: float = 2.0) -> None:
        """Stop listening; idle connections close at once, requests being answered get *grace* seconds."""
        if self._server is None:
            return
        self._server.close()
        for task in self._connections - self._busy:
            task.cancel()
        if self._busy:
            await asyncio.wait(list(self._busy), timeout=grace)
        for task in list(self._connections):
            task.cancel()
        if self._connections:
            await asyncio.wait(list(self._connections), timeout=2)
        await self._server.wait_closed()
        self._server = None

    async def _serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        task = asyncio.current_task()
        assert task is not None
        self._connections.add(task)
        try:
            if len(self._connections) > self.limits.max_connections:
                await self._send(writer, self.error(503, "too many connections: try again"), keep_alive=False)
                return
            await self._conversation(reader, writer)
        except (ConnectionError, asyncio.IncompleteReadError, ssl.SSLError, TimeoutError):
            pass
        except asyncio.CancelledError:
            pass
        except Exception:
            log.exception("connection failed")
        finally:
            self._connections.discard(task)
            writer.close()
            try:
                await asyncio.wait_for(writer.wait_closed(), 1.0)
            except (Exception, asyncio.CancelledError):
                pass

    async def _conversation(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        peer = writer.get_extra_info("peername")
        peer_text = peer[0] if isinstance(peer, tuple) else ""
        first = True
        while True:
            try:
                async with asyncio.timeout(self.limits.head_s if first else self.limits.idle_s):
                    head = await reader.readuntil(b"\r\n\r\n")
            except asyncio.IncompleteReadError as exc:
                if exc.partial.strip():
                    await self._send(writer, self.error(400, "incomplete request head"), keep_alive=False)
                return
            except asyncio.LimitOverrunError:
                await self._send(writer, self.error(431, f"request head over {MAX_HEAD // 1024} KiB"),
                                 keep_alive=False)
                return
            except TimeoutError:
                if reader._buffer:  # noqa: SLF001 - a head begun and never finished (no public API tells)
                    await self._send(writer, self.error(408, "the request head did not arrive in time"),
                                     keep_alive=False)
                return
            first = False
            arrived = time.monotonic()
            head = head[:-4].lstrip(b"\r\n")  # RFC 9112: ignore empty lines before a request line
            try:
                request, length, chunked, expect = _parse_head(head, peer_text, arrived)
            except HttpError as exc:
                await self._send(writer, self.error(exc.status, exc.message), keep_alive=False)
                return
            body = Body(reader, writer, length, chunked, expect, self.limits.body_s)
            request._body = body
            keep_alive = _keep_alive(request)
            task = asyncio.current_task()
            assert task is not None
            self._busy.add(task)
            try:
                try:
                    response = await self.app(request)
                except BodyTooLarge:
                    response, keep_alive = self.error(413, "request body too large"), False
                except HttpError as exc:
                    response, keep_alive = self.error(exc.status, exc.message), False
                if not body.consumed or body.broken:
                    keep_alive = False  # what is left of the body is not a request
                if self._server is None or not self._server.is_serving():
                    keep_alive = False  # stopping: this answer is the connection's last
                await self._send(writer, response, keep_alive=keep_alive, head_only=request.method == "HEAD",
                                 version=request.version)
            finally:
                self._busy.discard(task)
            if not keep_alive:
                return

    async def _send(self, writer: asyncio.StreamWriter, response: Response, *, keep_alive: bool,
                    head_only: bool = False, version: str = "HTTP/1.1") -> None:
        writer.write(render(response, keep_alive=keep_alive, head_only=head_only, version=version))
        async with asyncio.timeout(self.limits.write_s):
            await writer.drain()
