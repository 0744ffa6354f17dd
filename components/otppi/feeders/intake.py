"""What every feeder does with one message: parse, handle, answer on the callback.

A feeder acknowledges a message to its broker only after :meth:`Intake.take`
returns, and ``take`` returns only after the request is committed to the
store (or refused), so an acknowledged request is never lost. Bad input is
answered 1300 on the callback when the request names one, logged without
its body, and acknowledged like any other message: no poison-message loop.

Requests whose outcome is not known yet (a queued SMS) are followed by the
:class:`Courier`, which publishes the final answer on the callback once the
message is sent or failed, or 1111 when the feeder's timeout runs out.
"""

from __future__ import annotations

import json
import logging
import threading
import time
from dataclasses import dataclass
from typing import Any, Callable

from .. import codes
from ..contract import MAX_BODY, ContractError, command_of, load_json, validate
from ..doorbell import Doorbell, ring
from ..handler import Handler, response
from ..paths import Paths
from ..store.outbox import FINAL, Outbox

log = logging.getLogger(__name__)

#: The largest oversize body still read to find where its 1300 goes.
MAX_SCAN = 1024 * 1024

#: publish(topic, body, extra) — thread-safe; *extra* carries broker specifics (e.g. AMQP correlation_id).
Publish = Callable[[str, bytes, dict[str, Any]], None]


@dataclass(frozen=True)
class Reply:
    """Where an answer goes: a topic (or queue, or channel) and broker specifics."""

    topic: str
    extra: tuple[tuple[str, Any], ...] = ()


@dataclass
class _Pending:
    table: Outbox
    row_id: int
    answer: dict[str, Any]
    reply: Reply
    deadline: float


class Courier:
    """Publishes final outcomes of followed requests; one thread, woken by outcome rings."""

    def __init__(self, paths: Paths, handler: Handler, publish: Publish, name: str, poll: float = 0.5):
        self._handler = handler
        self._publish = publish
        self._poll = poll
        self._pending: list[_Pending] = []
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self._bell = Doorbell(paths.outcome_bells() / f"{name}-{threading.get_native_id()}.bell")
        self._thread = threading.Thread(target=self._run, name=f"{name}-courier", daemon=True)
        self._thread.start()

    def follow(self, table: Outbox, row_id: int, answer: dict[str, Any], reply: Reply, timeout: float) -> None:
        with self._lock:
            self._pending.append(_Pending(table, row_id, answer, reply, time.monotonic() + timeout))

    def _run(self) -> None:
        while not self._stop.is_set():
            self._bell.wait(self._poll)
            with self._lock:
                pending, self._pending = self._pending, []
            keep = []
            now = time.monotonic()
            for item in pending:
                state = item.table.select(item.table.state).where(item.table.id == item.row_id).scalar()
                if state in FINAL or state is None or now >= item.deadline:
                    answer = self._handler.answer(item.answer["command"], item.table, item.row_id, state,
                                                  item.answer["data"]) if state in FINAL else item.answer
                    self._send(item.reply, answer)
                else:
                    keep.append(item)
            with self._lock:
                self._pending = keep + self._pending

    def _send(self, reply: Reply, answer: dict[str, Any]) -> None:
        try:
            self._publish(reply.topic, json.dumps(answer).encode(), dict(reply.extra))
        except Exception as exc:  # the broker went away: the answer is lost, the request is not
            log.warning("could not publish the answer on %s: %s", reply.topic[:64], exc)

    def send(self, reply: Reply, answer: dict[str, Any]) -> None:
        self._send(reply, answer)

    @property
    def waiting(self) -> int:
        with self._lock:
            return len(self._pending)

    def close(self) -> None:
        self._stop.set()
        ring(self._bell.path)
        self._thread.join(5)
        self._bell.close()


class Intake:
    def __init__(self, handler: Handler, source: str, courier: Courier | None, timeout: float):
        self.handler = handler
        self.source = source
        self.courier = courier
        self.timeout = timeout

    def take(self, body: bytes, reply: Reply | None = None) -> dict[str, Any]:
        """Handle one message; never raises for bad input. Returns the immediate answer."""
        try:
            obj = load_json(body)
            req = validate(obj)
        except ContractError as exc:
            log.warning("%s: refused a message of %d bytes: %s", self.source, len(body), exc.message)
            answer = response(exc.command or command_of(body) or "", codes.MALFORMED, None, exc.message)
            target = reply or _callback_of(body)
            if target is not None and self.courier is not None:
                self.courier.send(target, answer)
            return answer
        target = reply or (Reply(req.callback_topic) if req.callback_topic else None)
        answers = target is not None and self.courier is not None

        def follow(table: Outbox, row_id: int, answer: dict[str, Any]) -> None:
            self.courier.follow(table, row_id, answer, target, self.timeout)

        answer = self.handler.handle(req, source=self.source, wait=0.0, follow=follow if answers else None)
        if answers and answer["response_code"] != codes.QUEUED:
            self.courier.send(target, answer)
        return answer


def _callback_of(body: bytes) -> Reply | None:
    """The callback of a request that failed validation, when its JSON still names one.

    A body over the contract's limit is still parsed for this alone, up to MAX_SCAN, so the sender of
    a huge request hears 1300 instead of nothing.
    """
    try:
        obj = load_json(body) if len(body) <= MAX_BODY else json.loads(body) if len(body) <= MAX_SCAN else None
    except (ContractError, ValueError, RecursionError):
        return None
    topic = obj.get("callback_topic") if isinstance(obj, dict) else None
    return Reply(topic) if isinstance(topic, str) and 0 < len(topic) <= 255 else None
