"""The REST API's HTTP server on real sockets, with an application that echoes what it got.

Malformed, oversize, slow and hostile clients get a clear status and a closed
connection, and the server goes on serving the next client.
"""

from __future__ import annotations

import asyncio
import json
import socket
import threading

import pytest

from otppi.api.http import MAX_HEAD, HttpServer, Limits, Request, Response

from .helpers import wait_until


def _error(status: int, message: str) -> Response:
    return Response(status, json.dumps({"error": message}).encode())


async def _echo(req: Request) -> Response:
    if req.path == "/nobody":
        return Response(404, b"{}")  # answers without reading the body
    body = await req.body(1000)
    return Response(200, json.dumps({"method": req.method, "path": req.path, "body": body.decode(),
                                     "version": req.version}).encode())


class Served:
    """An HttpServer on a loop thread of its own; ``connect()`` gives a raw client socket."""

    def __init__(self, limits: Limits):
        self.loop = asyncio.new_event_loop()
        self.thread = threading.Thread(target=self.loop.run_forever, daemon=True)
        self.thread.start()
        self.server = HttpServer(_echo, _error, "127.0.0.1", 0, limits=limits)
        asyncio.run_coroutine_threadsafe(self.server.start(), self.loop).result(5)
        self.port = self.server.bound_port

    def connect(self) -> socket.socket:
        sock = socket.create_connection(("127.0.0.1", self.port), timeout=10)
        return sock

    def close(self) -> None:
        asyncio.run_coroutine_threadsafe(self.server.stop(), self.loop).result(5)
        self.loop.call_soon_threadsafe(self.loop.stop)
        self.thread.join(5)
        self.loop.close()


@pytest.fixture
def served():
    s = Served(Limits(head_s=1.0, body_s=1.0, idle_s=1.0, max_connections=8))
    yield s
    s.close()


def read_answer(sock: socket.socket, buf: bytearray | None = None) -> tuple[int, dict[str, str], bytes]:
    """One answer off *sock*: (status, headers, body); *buf* carries bytes read past it."""
    buf = bytearray() if buf is None else buf
    while b"\r\n\r\n" not in buf:
        chunk = sock.recv(65536)
        if not chunk:
            raise ConnectionError(f"closed before an answer: {bytes(buf)!r}")
        buf += chunk
    head, _, rest = bytes(buf).partition(b"\r\n\r\n")
    lines = head.decode("latin-1").split("\r\n")
    headers = {k.lower(): v.strip() for k, _, v in (line.partition(":") for line in lines[1:])}
    length = int(headers["content-length"])
    while len(rest) < length:
        chunk = sock.recv(65536)
        if not chunk:
            raise ConnectionError("closed inside an answer")
        rest += chunk
    buf[:] = rest[length:]
    return int(lines[0].split()[1]), headers, rest[:length]


def closed(sock: socket.socket) -> bool:
    try:
        return sock.recv(1) == b""
    except ConnectionResetError:
        return True


def post(path: str = "/x", body: bytes = b"hi", extra: str = "") -> bytes:
    return (f"POST {path} HTTP/1.1\r\nHost: t\r\nContent-Length: {len(body)}\r\n{extra}\r\n").encode() + body


def still_serving(served: Served) -> None:
    with served.connect() as sock:
        sock.sendall(post(body=b"next"))
        status, _, body = read_answer(sock)
        assert status == 200 and json.loads(body)["body"] == "next"


def test_keep_alive_and_pipelined_requests_are_answered_in_order(served: Served) -> None:
    with served.connect() as sock:
        sock.sendall(post(body=b"one") + post(body=b"two") + post(body=b"three", extra="Connection: close\r\n"))
        buf = bytearray()
        bodies = [json.loads(read_answer(sock, buf)[2])["body"] for _ in range(3)]
        assert bodies == ["one", "two", "three"]
        assert closed(sock)


def test_chunked_body(served: Served) -> None:
    with served.connect() as sock:
        sock.sendall(b"POST /x HTTP/1.1\r\nHost: t\r\nTransfer-Encoding: chunked\r\n\r\n"
                     b"3;ext=1\r\nabc\r\n2\r\nde\r\n0\r\nTrailer: x\r\n\r\n")
        status, _, body = read_answer(sock)
        assert status == 200 and json.loads(body)["body"] == "abcde"


def test_expect_continue_gets_100_before_the_body_is_sent(served: Served) -> None:
    with served.connect() as sock:
        sock.sendall(b"POST /x HTTP/1.1\r\nHost: t\r\nContent-Length: 4\r\nExpect: 100-continue\r\n\r\n")
        interim = sock.recv(100)
        assert interim.startswith(b"HTTP/1.1 100 Continue\r\n\r\n")
        sock.sendall(b"body")
        buf = bytearray(interim[len(b"HTTP/1.1 100 Continue\r\n\r\n"):])
        status, _, body = read_answer(sock, buf)
        assert status == 200 and json.loads(body)["body"] == "body"


def test_http_1_0_closes_unless_asked_to_keep_alive(served: Served) -> None:
    with served.connect() as sock:
        sock.sendall(b"POST /x HTTP/1.0\r\nContent-Length: 2\r\n\r\nhi")
        status, headers, _ = read_answer(sock)
        assert status == 200 and headers["connection"] == "close" and closed(sock)
    with served.connect() as sock:
        sock.sendall(b"POST /x HTTP/1.0\r\nConnection: keep-alive\r\nContent-Length: 1\r\n\r\na" * 2)
        buf = bytearray()
        assert [read_answer(sock, buf)[0] for _ in range(2)] == [200, 200]


@pytest.mark.parametrize("raw,status", [
    (b"GARBAGE\r\n\r\n", 400),
    (b"POST /x HTTP/1.1 extra\r\nHost: t\r\n\r\n", 400),
    (b"POST http://evil/x HTTP/1.1\r\nHost: t\r\n\r\n", 400),
    (b"POST /x HTTP/2.0\r\nHost: t\r\n\r\n", 505),
    (b"POST /x HTTP/1.1\r\n\r\n", 400),  # no Host
    (b"POST /x HTTP/1.1\r\nHost: t\r\nBad Header: v\r\n\r\n", 400),
    (b"POST /x HTTP/1.1\r\nHost: t\r\nX: a\x00b\r\n\r\n", 400),
    (b"POST /x HTTP/1.1\r\nHost: t\r\nContent-Length: 3\r\nTransfer-Encoding: chunked\r\n\r\n", 400),
    (b"POST /x HTTP/1.1\r\nHost: t\r\nContent-Length: 3\r\nContent-Length: 4\r\n\r\nabcd", 400),
    (b"POST /x HTTP/1.1\r\nHost: t\r\nContent-Length: -1\r\n\r\n", 400),
    (b"POST /x HTTP/1.1\r\nHost: t\r\nContent-Length: 99999999999999999\r\n\r\n", 400),
    (b"POST /x HTTP/1.1\r\nHost: t\r\nTransfer-Encoding: gzip\r\n\r\n", 501),
    (b"POST /x HTTP/1.1\r\nHost: t\r\nTransfer-Encoding: chunked\r\n\r\nzz\r\n", 400),
    (b"POST /x HTTP/1.1\r\nHost: t\r\nTransfer-Encoding: chunked\r\n\r\n3\r\nabcXY", 400),
    (b"POST /x HTTP/1.1\r\nHost: t\r\nAuthorization: a\r\nAuthorization: b\r\n\r\n", 400),
    (b"POST /x HTTP/1.1\r\nHost: t\r\nExpect: magic\r\n\r\n", 417),
    (b"POST /x HTTP/1.1\r\nHost: t\r\n" + b"X: y\r\n" * 101 + b"\r\n", 431),
    (b"POST /x HTTP/1.1\r\nHost: t\r\nX: " + b"a" * MAX_HEAD + b"\r\n\r\n", 431),
])
def test_malformed_requests_get_a_status_and_a_closed_connection(served: Served, raw: bytes, status: int) -> None:
    with served.connect() as sock:
        sock.sendall(raw)
        got, headers, _ = read_answer(sock)
        assert got == status
        assert headers["connection"] == "close" and closed(sock)
    still_serving(served)


def test_oversize_bodies_get_413_whether_declared_or_chunked(served: Served) -> None:
    with served.connect() as sock:
        sock.sendall(post(body=b"a" * 1001))
        assert read_answer(sock)[0] == 413 and closed(sock)
    with served.connect() as sock:
        sock.sendall(b"POST /x HTTP/1.1\r\nHost: t\r\nTransfer-Encoding: chunked\r\n\r\n" + b"100\r\n" + b"a" * 256
                     + b"\r\n" + (b"100\r\n" + b"a" * 256 + b"\r\n") * 4)
        assert read_answer(sock)[0] == 413 and closed(sock)
    still_serving(served)


def test_an_unread_body_ends_the_connection_after_the_answer(served: Served) -> None:
    """What the application did not read cannot be taken for the next request (no smuggling)."""
    with served.connect() as sock:
        sock.sendall(post("/nobody", body=post("/smuggled", body=b"x")))
        assert read_answer(sock)[0] == 404
        assert closed(sock)


def test_slow_clients_are_cut_off(served: Served) -> None:
    with served.connect() as sock:
        sock.sendall(b"POST /x HTTP/1.1\r\nHost: t\r\n")  # and never the blank line
        status, _, _ = read_answer(sock)
        assert status == 408 and closed(sock)
    with served.connect() as sock:
        sock.sendall(b"POST /x HTTP/1.1\r\nHost: t\r\nContent-Length: 10\r\n\r\nabc")
        status, _, _ = read_answer(sock)
        assert status == 408 and closed(sock)
    with served.connect() as sock:  # an idle connection is closed without an answer
        assert closed(sock)
    still_serving(served)


def test_a_client_that_vanishes_mid_request_leaves_the_server_serving(served: Served) -> None:
    for raw in (b"POST /x HTTP/1.1\r\nHost: t\r\nContent-Length: 100\r\n\r\nabc", b"POST /x HT"):
        sock = served.connect()
        sock.sendall(raw)
        sock.close()
    still_serving(served)


def test_connections_past_the_limit_get_503(served: Served) -> None:
    held = [served.connect() for _ in range(8)]
    try:
        for sock in held:  # each one in the middle of a request, so the server holds it
            sock.sendall(b"POST /x HTTP/1.1\r\n")
        with served.connect() as extra:
            status, headers, _ = read_answer(extra)
            assert status == 503 and headers["connection"] == "close"
    finally:
        for sock in held:
            sock.close()
    wait_until(lambda: served.server.connections == 0, what="the held connections to be closed")
    still_serving(served)


def test_head_requests_get_the_head_only(served: Served) -> None:
    with served.connect() as sock:
        sock.sendall(b"HEAD /x HTTP/1.1\r\nHost: t\r\nConnection: close\r\n\r\n")
        data = b""
        while chunk := sock.recv(4096):
            data += chunk
        head, _, rest = data.partition(b"\r\n\r\n")
        assert head.startswith(b"HTTP/1.1 200") and rest == b""
