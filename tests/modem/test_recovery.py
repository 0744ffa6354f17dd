"""Nothing claimed is left behind: the dispatcher and real modem workers in this process, on a simulated
modem through real pyserial, against a real store: a worker thread that died is started again and its rows
go back to the queue, a row 'sending' past its lease is queued again, a worker never sends a row that is no
longer its own, and multipart SMS that never complete reach the inbox marked incomplete."""

from __future__ import annotations

import time
from datetime import datetime, timezone

import pytest

from otppi import keys
from otppi.modem.dispatcher import LEASE_MARGIN, Dispatcher
from otppi.modem.inbox import INCOMPLETE_AFTER, store_deliver
from otppi.modem.pdu import decode_pdu, encode_deliver
from otppi.modem.worker import ModemWorker, SendJob
from otppi.seal import seal
from otppi.store import outbox
from otppi.store.db import db
from otppi.store.models import Event, InboxMessage, InboxPart, Modem, SmsOutbox

from ..helpers import otppi, wait_until


class DiesOnceWorker(ModemWorker):
    """The first worker of a modem ends its thread at once, as a bug no job guard can catch would
    (a SystemExit raised in a job); the ones started after it are ordinary workers."""

    died: set[str] = set()

    def run(self) -> None:
        if self.config.name not in DiesOnceWorker.died:
            DiesOnceWorker.died.add(self.config.name)
            return
        super().run()


@pytest.fixture
def gateway(paths, make_simulator):
    """A dispatcher with one modem, "m", on a simulated SIM800; turn() it by hand."""
    sim = make_simulator(1)
    with db.atomic():
        Modem.create(name="m", port=sim[0].path, is_default=True)
    made = []

    def make(worker_factory=ModemWorker) -> Dispatcher:
        dispatcher = Dispatcher(paths, keys.otp_key(paths), worker_factory=worker_factory)
        made.append(dispatcher)
        dispatcher.reload()
        return dispatcher

    make.sim = sim[0]
    make.key = keys.otp_key(paths)
    yield make
    for dispatcher in made:
        dispatcher.stop()


def state(row_id: int) -> tuple:
    row = SmsOutbox.get_by_id(row_id)
    return row.state, row.modem


def claimed_row(key: bytes, text: str, *, age: float = 0.0, modem: str = "m") -> int:
    """A row as the dispatcher leaves it once it handed it to *modem* (claimed *age* seconds ago)."""
    with db.atomic():
        row = SmsOutbox.create(kind="sms", source="test", receiver="628121234567", body=seal(key, text))
    assert outbox.claim(SmsOutbox, row.id, modem=modem, parts=1)
    with db.atomic():
        SmsOutbox.update(updated_at=time.time() - age).where(SmsOutbox.id == row.id).execute()
    return row.id


def turn_until(dispatcher: Dispatcher, predicate, what: str, timeout: float = 20.0):
    return wait_until(lambda: (dispatcher.turn(), predicate())[1], timeout=timeout, what=what)


def test_a_worker_that_died_is_started_again_and_its_rows_are_sent(gateway) -> None:
    DiesOnceWorker.died.clear()
    dispatcher = gateway(DiesOnceWorker)
    first = dispatcher.workers["m"]
    first.join(5)
    assert not first.is_alive()
    held = claimed_row(gateway.key, "held by the dead worker")

    turn_until(dispatcher, lambda: state(held) == ("sent", "m"), "the held row sent by a new worker")
    assert dispatcher.workers["m"] is not first and dispatcher.workers["m"].is_alive()
    assert [m.text for m in gateway.sim.sent.messages()] == ["held by the dead worker"]
    assert Event.select().where((Event.result == "retry") & Event.cause.contains("worker of modem m stopped")).exists()


def test_a_row_past_its_lease_is_queued_again_and_one_within_it_is_left(gateway) -> None:
    dispatcher = gateway()
    wait_until(lambda: dispatcher.workers["m"].free, what="m ready")
    send_timeout = dispatcher.sms.send_timeout
    lost = claimed_row(gateway.key, "lost", age=send_timeout + LEASE_MARGIN + 5)
    fresh = claimed_row(gateway.key, "in flight", age=send_timeout + LEASE_MARGIN - 100)

    turn_until(dispatcher, lambda: state(lost) == ("sent", "m"), "the requeued row sent")
    assert state(fresh) == ("sending", "m"), "a row within its lease is left to its modem"
    assert [m.text for m in gateway.sim.sent.messages()] == ["lost"]
    (retry,) = Event.select().where(Event.result == "retry")
    assert retry.cause == "no outcome from modem m in time: queued again"
    assert SmsOutbox.get_by_id(lost).tried == "", "the modem failed nothing: it may take the row again"


def test_a_worker_does_not_send_a_row_that_is_no_longer_its_own(gateway) -> None:
    dispatcher = gateway()
    worker = dispatcher.workers["m"]
    wait_until(lambda: worker.free, what="m ready")
    with db.atomic():
        requeued = SmsOutbox.create(kind="sms", source="test", receiver="628121234567", body="", attempts=1).id
        elsewhere = SmsOutbox.create(kind="sms", source="test", receiver="628121234567", body="", attempts=2,
                                     state="sending", modem="other").id
    for row_id in (requeued, elsewhere):
        worker.submit(SendJob(row_id, "628121234567", "stale", False, 1, attempt=1))
        result = dispatcher.results.get(timeout=10)
        assert (result.row_id, result.ok, result.skipped) == (row_id, False, True)
    assert gateway.sim.sent.messages() == []
    assert worker.failures == 0


def parts_of(text: str, reference: int) -> list:
    moment = datetime(2026, 1, 2, 3, 4, 5, tzinfo=timezone.utc)
    return [decode_pdu(p) for p in encode_deliver("+628111222333", text, moment, concat_reference=reference)]


def test_a_multipart_sms_that_never_completes_reaches_the_inbox_marked_incomplete(gateway, paths) -> None:
    dispatcher = gateway()
    first, second, third = parts_of("Lorem ipsum dolor sit amet " * 12, reference=7)
    store_deliver("m", first)
    arrived = time.time()
    store_deliver("m", third)
    assert InboxMessage.select().count() == 0

    dispatcher.turn(now=arrived + INCOMPLETE_AFTER - 60)
    assert InboxMessage.select().count() == 0 and InboxPart.select().count() == 2, "parts may arrive hours apart"

    dispatcher._next_purge = 0.0  # the next look is normally ten minutes on
    dispatcher.turn(now=arrived + INCOMPLETE_AFTER + 60)
    (message,) = InboxMessage.select()
    assert message.incomplete and message.parts == 2
    assert message.body == first.text + "[part 2 of 3 did not arrive]" + third.text
    assert InboxPart.select().count() == 0
    assert Event.get(Event.result == "incomplete").cause == "2 of 3 part(s)"
    listing = otppi(paths.root, "inbox", "list").stdout
    assert "\t(incomplete) Lorem ipsum" in listing


def test_the_incomplete_clock_starts_at_the_newest_part(gateway) -> None:
    dispatcher = gateway()
    first, second, third = parts_of("Lorem ipsum dolor sit amet " * 12, reference=9)
    store_deliver("m", first)
    with db.atomic():  # the first part came two days ago, the second just now
        InboxPart.update(received_at=time.time() - 2 * 86_400).execute()
    store_deliver("m", second)
    dispatcher.turn(now=time.time() + INCOMPLETE_AFTER - 86_400)
    assert InboxPart.select().count() == 2
    store_deliver("m", third)
    (message,) = InboxMessage.select()
    assert not message.incomplete and message.parts == 3
