"""What every feeder does with one message: parse, handle, answer on the callback.

A feeder acknowledges a message to its broker only after :meth:`Intake.take`
returns, and ``take`` returns only after the request is committed to the
store (or refused), so an acknowledged request is never lost. No message can
stop a feeder:

- bad input is answered 1300 on the callback when the request names one,
  logged without its body, and acknowledged like any other message;
- a request whose handling raises anything else is answered 1102, logged
  with its stack but without its body, and acknowledged: the next request
  is handled;
- except when the store itself failed (locked past its busy timeout,
  read-only, full) and the broker keeps the message until it is
  acknowledged: then ``take`` raises :class:`StoreUnavailable`, the message
  stays with the broker and comes back after the runner's backoff;
- a message delivered more than :data:`MAX_DELIVERIES` times without being
  acknowledged (the feeder process died handling it, or the store kept
  failing it) is dead-lettered: acknowledged without being handled, answered
  1102 on its callback, and recorded as a ``feeder`` event (never its body).
  The broker's :class:`Delivery` says how many times it delivered it.

Requests whose outcome is not known yet (a queued SMS) are followed by the
:class:`Courier`, which publishes the final answer on the callback once the
message is sent or failed, or 1111 when the feeder's timeout runs out.
"""

from __future__ import annotations

import json
import logging
import threading
import time
import traceback
from dataclasses import dataclass
from typing import Any, Callable

from peewee import OperationalError

from .. import codes
from ..contract import MAX_BODY, ContractError, callback_topic_ok, command_of, load_json, validate
from ..doorbell import Doorbell, ring
from ..handler import Handler, response
from ..paths import Paths
from ..store.outbox import FINAL, Outbox, record_event
from .deliveries import DeliveryLedger

log = logging.getLogger(__name__)

#: The largest oversize body still read to find where its 1300 goes.
MAX_SCAN = 1024 * 1024

#: A message delivered more often than this without being acknowledged is dead-lettered, not handled.
MAX_DELIVERIES = 5

#: publish(topic, body, extra) — thread-safe; *extra* carries broker specifics (e.g. AMQP correlation_id).
Publish = Callable[[str, bytes, dict[str, Any]], None]


class StoreUnavailable(Exception):
    """The store failed while a request was being taken; the broker keeps the message for a later try."""


@dataclass(frozen=True)
class Delivery:
    """What the broker says about this copy of a message.

    *count* is the broker's own delivery count, this one included, when it keeps one (Redis Streams,
    RabbitMQ quorum queues); *redelivered* is the flag of brokers that only say "delivered before"
    (RabbitMQ ``redelivered``, MQTT DUP), which the intake's ledger turns into a count. *kept* is
    whether the broker keeps the message until it is acknowledged (not so for Redis pub/sub and
    WebSocket). *ref* names the message in logs and events (a stream entry id), never its body.
    """

    count: int | None = None
    redelivered: bool = False
    kept: bool = True
    ref: str = ""


#: A first delivery from a broker that keeps messages until they are acknowledged.
FIRST = Delivery(count=1)
#: A message from a broker that keeps nothing (Redis pub/sub, WebSocket): never delivered twice.
UNKEPT = Delivery(count=1, kept=False)


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
        failing = False
        while not self._stop.is_set():
            try:
                self._bell.wait(self._poll)
            except OSError as exc:  # the bell is gone: the poll still finds every outcome
                log.warning("courier: the outcome bell failed (%s); polling", exc)
                self._stop.wait(self._poll)
            with self._lock:
                pending, self._pending = self._pending, []
            keep: list[_Pending] = []
            index, now = 0, time.monotonic()
            try:
                for index, item in enumerate(pending):
                    if not self._answer_if_done(item, now):
                        keep.append(item)
                index = len(pending)
            except Exception as exc:  # the store failed (locked, read-only, I/O): every unanswered item waits
                for item in pending[index:]:
                    if now >= item.deadline:  # its outcome is not known in time either way: 1111, as promised
                        self._send(item.reply, item.answer)
                    else:
                        keep.append(item)
                if not failing:
                    log.error("courier: cannot read outcomes (%s: %s); %d answers wait until the store answers "
                              "again", type(exc).__name__, exc, len(keep))
                failing = True
                self._stop.wait(self._poll)  # rings may keep coming: do not spin on a failing store
            else:
                if failing:
                    log.warning("courier: the store answers again; %d answers still wait", len(keep))
                failing = False
            with self._lock:
                self._pending = keep + self._pending

    def _answer_if_done(self, item: _Pending, now: float) -> bool:
        """Publish the answer of *item* if its outcome is known (or its time ran out); True if it was."""
        state = item.table.select(item.table.state).where(item.table.id == item.row_id).scalar()
        if state in FINAL:
            answer = self._handler.answer(item.answer["command"], item.table, item.row_id, state,
                                          item.answer["data"])
        elif state is None or now >= item.deadline:
            answer = item.answer
        else:
            return False
        self._send(item.reply, answer)
        return True

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
    def __init__(self, handler: Handler, source: str, courier: Courier | None, timeout: float,
                 ledger: DeliveryLedger | None = None):
        self.handler = handler
        self.source = source
        self.feeder = source.split(":", 1)[0]  # the event source the runner uses ("redis", "amqp" …)
        self.courier = courier
        self.timeout = timeout
        self.ledger = ledger

    def take(self, body: bytes, reply: Reply | None = None, delivery: Delivery = FIRST) -> dict[str, Any]:
        """Handle one message; returns the immediate answer. Never raises for the message's sake.

        Raises :class:`StoreUnavailable` only when the store failed and the broker keeps the message.
        """
        count = delivery.count
        counted = count is None and delivery.redelivered and self.ledger is not None
        if counted:
            count = self.ledger.count(body)
        if count is not None and count > MAX_DELIVERIES:
            answer = self._dead_letter(body, reply, count, delivery.ref)
        else:
            try:
                answer = self._take(body, reply, delivery)
            except StoreUnavailable:
                raise
            except Exception as exc:  # a defect this message revealed: answer it, never loop on it
                answer = self._failed(body, reply, exc)
        if counted:
            self.ledger.forget(body)
        return answer

    def _take(self, body: bytes, reply: Reply | None, delivery: Delivery) -> dict[str, Any]:
        try:
            obj = load_json(body)
            req = validate(obj)
        except ContractError as exc:
            log.warning("%s: refused a message of %d bytes: %s", self.source, len(body), exc.message)
            answer = response(exc.command or command_of(body) or "", codes.MALFORMED, None, exc.message)
            self._answer(reply or _callback_of(body), answer)
            return answer
        target = reply or (Reply(req.callback_topic) if req.callback_topic else None)
        answers = target is not None and self.courier is not None

        def follow(table: Outbox, row_id: int, answer: dict[str, Any]) -> None:
            self.courier.follow(table, row_id, answer, target, self.timeout)

        try:
            answer = self.handler.handle(req, source=self.source, wait=0.0, follow=follow if answers else None)
        except OperationalError as exc:
            if not delivery.kept:
                raise  # nothing would come back: answered 1102 like any failure
            log.error("%s: the store failed (%s); the message stays with the broker", self.source, exc)
            raise StoreUnavailable(str(exc)) from exc
        if answers and answer["response_code"] != codes.QUEUED:
            self.courier.send(target, answer)
        return answer

    def _failed(self, body: bytes, reply: Reply | None, exc: Exception) -> dict[str, Any]:
        """1102 for a message whose taking raised; the log has the stack, never the body or its values."""
        stack = "".join(traceback.format_list(traceback.extract_tb(exc.__traceback__)))
        log.error("%s: a message of %d bytes raised %s; answered 1102 and acknowledged:\n%s", self.source,
                  len(body), type(exc).__name__, stack.rstrip())
        try:
            name, target = command_of(body) or "", reply or _callback_of(body)
        except Exception:  # the same defect again: answer where the broker said, if it said
            name, target = "", reply
        answer = response(name, codes.FAILED, None, f"{codes.MEANING[codes.FAILED]}: the device could not "
                                                    f"handle this request ({type(exc).__name__})")
        self._answer(target, answer)
        return answer

    def _dead_letter(self, body: bytes, reply: Reply | None, count: int, ref: str) -> dict[str, Any]:
        """Acknowledge without handling a message that keeps coming back unacknowledged."""
        what = f"message {ref}" if ref else f"a message of {len(body)} bytes"
        log.error("%s: %s was delivered %d times and never acknowledged; dead-lettered, not handled",
                  self.source, what, count)
        answer = response(command_of(body) or "", codes.FAILED, None,
                          f"{codes.MEANING[codes.FAILED]}: not handled, the message was delivered {count} times "
                          "and never finished (dead-lettered)")
        self._answer(reply or _callback_of(body), answer)
        try:
            record_event("feeder", source=self.feeder, result="dead-lettered",
                         cause=f"{what} after {count} deliveries")
        except OperationalError as exc:  # the store may be why it keeps coming back: the log has it
            log.warning("%s: could not record the dead letter: %s", self.source, exc)
        return answer

    def _answer(self, target: Reply | None, answer: dict[str, Any]) -> None:
        if target is not None and self.courier is not None:
            self.courier.send(target, answer)


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
    return Reply(topic) if isinstance(topic, str) and callback_topic_ok(topic) else None
