"""The load generator: keep-alive HTTP/1.1 clients on threads, run in a process of their own.

The client is deliberately small (pre-encoded requests on raw sockets, no
HTTP library) so that as much of the shared CPU as possible is left to the
server; its own CPU use is measured and reported beside the server's.

Two shapes of load:

* closed loop: N clients, each sends its next request as soon as its last
  answer arrived; the rate reached is the server's maximum at N;
* open loop: requests are due at a fixed rate whatever the answers do, and a
  request's latency counts from when it was due, so a stalled server cannot
  hide its queue (no coordinated omission).
"""

from __future__ import annotations

import itertools
import json
import resource
import socket
import threading
import time
from collections import Counter
from dataclasses import dataclass, field

SOCKET_TIMEOUT_S = 10.0


@dataclass(frozen=True)
class Target:
    host: str
    port: int
    path: str
    authorization: str  # the value of the Authorization header

    def head(self) -> bytes:
        return (f"POST {self.path} HTTP/1.1\r\nHost: {self.host}:{self.port}\r\n"
                f"Authorization: {self.authorization}\r\nContent-Type: application/json\r\n").encode("ascii")


@dataclass
class Result:
    sent: int = 0
    wall_s: float = 0.0
    client_cpu_s: float = 0.0
    latencies_s: list[float] = field(default_factory=list)
    answers: Counter = field(default_factory=Counter)  # "HTTP status/response_code" → count
    errors: Counter = field(default_factory=Counter)  # exception name → count
    late_s: float = 0.0  # open loop: the worst delay between a request's due time and its sending


class Connection:
    """One keep-alive connection; answers are read by Content-Length (the api always sends it)."""

    def __init__(self, target: Target):
        self.target = target
        self.head = target.head()
        self.sock: socket.socket | None = None
        self.buf = b""

    def _open(self) -> socket.socket:
        sock = socket.create_connection((self.target.host, self.target.port), timeout=SOCKET_TIMEOUT_S)
        sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        self.buf = b""
        return sock

    def _recv(self) -> None:
        assert self.sock is not None
        chunk = self.sock.recv(65536)
        if not chunk:
            raise ConnectionResetError("server closed the connection")
        self.buf += chunk

    def request(self, body: bytes) -> tuple[int, bytes]:
        if self.sock is None:
            self.sock = self._open()
        self.sock.sendall(self.head + b"Content-Length: %d\r\n\r\n" % len(body) + body)
        while (end := self.buf.find(b"\r\n\r\n")) < 0:
            self._recv()
        head, self.buf = self.buf[:end].lower(), self.buf[end + 4:]
        status = int(head[9:12])
        at = head.index(b"\r\ncontent-length:") + 17
        stop = head.find(b"\r\n", at)
        length = int(head[at:] if stop < 0 else head[at:stop])
        while len(self.buf) < length:
            self._recv()
        answer, self.buf = self.buf[:length], self.buf[length:]
        if b"\r\nconnection: close" in head:
            self.close()
        return status, answer

    def close(self) -> None:
        if self.sock is not None:
            self.sock.close()
            self.sock = None


def _answer_key(status: int, answer: bytes) -> str:
    try:
        return f"{status}/{json.loads(answer)['response_code']}"
    except (ValueError, KeyError, TypeError):
        return f"{status}/?"


def _cpu() -> float:
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return usage.ru_utime + usage.ru_stime


class _Run:
    """One load run: every body sent once over *clients* connections, then the figures."""

    def __init__(self, target: Target, bodies: list[bytes], clients: int, due, budget_s: float):
        self.bodies, self.due, self.budget_s = bodies, due, budget_s
        self.latencies: list[float | None] = [None] * len(bodies)
        self.keys: list[str | None] = [None] * len(bodies)
        self.errors: Counter = Counter()
        self.late = 0.0
        self.next_index = itertools.count().__next__  # atomic under the GIL
        self.connections = [Connection(target) for _ in range(clients)]
        self.gate = threading.Barrier(clients + 1)
        self.start = 0.0

    def client(self, conn: Connection) -> None:
        self.gate.wait()
        deadline = self.start + self.budget_s
        while (i := self.next_index()) < len(self.bodies):
            now = time.perf_counter()
            if now > deadline:
                break
            when = now if self.due is None else self.start + self.due(i)
            if when > now:
                time.sleep(when - now)
            else:
                self.late = max(self.late, now - when)
            try:
                status, answer = conn.request(self.bodies[i])
            except OSError as exc:
                self.errors[type(exc).__name__] += 1
                conn.close()
                continue
            self.latencies[i] = time.perf_counter() - when
            self.keys[i] = _answer_key(status, answer)

    def __call__(self) -> Result:
        for conn in self.connections:  # connect before the clock starts
            conn.sock = conn._open()
        threads = [threading.Thread(target=self.client, args=(c,), daemon=True) for c in self.connections]
        for thread in threads:
            thread.start()
        cpu0 = _cpu()
        self.start = time.perf_counter()
        self.gate.wait()
        for thread in threads:
            thread.join(self.budget_s + 2 * SOCKET_TIMEOUT_S)
        wall, cpu = time.perf_counter() - self.start, _cpu() - cpu0
        for conn in self.connections:
            conn.close()
        latencies = sorted(x for x in self.latencies if x is not None)
        return Result(sent=len(latencies) + sum(self.errors.values()), wall_s=wall, client_cpu_s=cpu,
                      latencies_s=latencies, answers=Counter(k for k in self.keys if k is not None),
                      errors=self.errors, late_s=self.late)


def closed_loop(target: Target, bodies: list[bytes], clients: int, budget_s: float) -> Result:
    """As fast as *clients* connections go: the maximum rate."""
    return _Run(target, bodies, clients, None, budget_s)()


def open_loop(target: Target, bodies: list[bytes], rate: float, clients: int, budget_s: float) -> Result:
    """One request due every ``1/rate`` seconds, over up to *clients* connections."""
    return _Run(target, bodies, clients, lambda i: i / rate, budget_s)()
