"""The dispatcher in-process with a recording fake sender and an injected clock: failover, pool retries
with backoff, expiry, and the rows it finds after a crash."""

from __future__ import annotations

from otppi import keys
from otppi.doorbell import Doorbell
from otppi.mailer.dispatcher import Dispatcher
from otppi.mailer.smtp import SendError
from otppi.seal import seal
from otppi.store import settings
from otppi.store.db import db
from otppi.store.models import EmailAccount, EmailOutbox, Event

START = 1_700_000_000.0


class Clock:
    def __init__(self) -> None:
        self.now = START

    def __call__(self) -> float:
        return self.now


class ScriptedSender:
    """Fails with the error scripted for an account's sender, else accepts; records (time, sender)."""

    def __init__(self, clock: Clock, errors: dict[str, SendError]):
        self.clock, self.errors, self.calls = clock, errors, []

    def __call__(self, account, message, receiver) -> None:
        self.calls.append((self.clock() - START, account.sender))
        if account.sender in self.errors:
            raise self.errors[account.sender]


def accounts(*senders: str) -> None:
    with db.atomic():
        for sender in senders:
            EmailAccount.create(sender_account=sender, smtp_host="127.0.0.1", sender_password="pw")


def queue(paths, **fields) -> int:
    with db.atomic():
        return EmailOutbox.create(receiver="to@client.example", subject="s",
                                  body=seal(keys.otp_key(paths), "hello"), **fields).id


def drive(dispatcher: Dispatcher, bell: Doorbell, clock: Clock, row_id: int) -> EmailOutbox:
    """Turn until the row is final; with nothing in flight, jump the clock to the next retry."""
    for _ in range(100):
        sleep = dispatcher.turn()
        row = EmailOutbox.get_by_id(row_id)
        if row.state in ("sent", "failed", "expired"):
            return row
        if dispatcher.in_flight:
            assert bell.wait(10), "a send did not come back"
        else:
            clock.now += sleep
    raise AssertionError("the row never reached a final state")


def setup(paths, errors: dict[str, SendError]):
    clock = Clock()
    sender = ScriptedSender(clock, errors)
    bell = Doorbell(paths.doorbell("mailer"))
    dispatcher = Dispatcher(paths, keys.otp_key(paths), sender=sender, clock=clock)
    dispatcher.reload()
    return dispatcher, bell, clock, sender


def test_every_server_down_retries_the_pool_with_doubling_delays(paths) -> None:
    accounts("a@example.com", "b@example.com")
    settings.set_text("mail.retry_delay", "10")
    down = SendError("cannot connect: connection refused", transient=True)
    dispatcher, bell, clock, sender = setup(paths, {"a@example.com": down, "b@example.com": down})
    row = drive(dispatcher, bell, clock, queue(paths))
    dispatcher.stop()
    bell.close()
    assert [t for t, _ in sender.calls] == [0, 0, 10, 10, 30, 30]
    assert (row.state, row.attempts, row.rounds, row.body) == ("failed", 6, 2, None)
    assert row.last_error.endswith(": cannot connect: connection refused")
    assert [e.result for e in Event.select().order_by(Event.id)] == ["retry"] * 6 + ["failed"]


def test_permanent_failures_end_after_one_pass(paths) -> None:
    accounts("a@example.com", "b@example.com")
    refused = SendError("recipient refused: 550 no such user", transient=False)
    dispatcher, bell, clock, sender = setup(paths, {"a@example.com": SendError("authentication failed: 535", False),
                                                    "b@example.com": refused})
    row = drive(dispatcher, bell, clock, queue(paths))
    dispatcher.stop()
    bell.close()
    assert [s for _, s in sender.calls] == ["a@example.com", "b@example.com"]
    assert (row.state, row.last_error) == ("failed", "b@example.com: recipient refused: 550 no such user")


def test_one_transient_failure_is_enough_to_try_again(paths) -> None:
    accounts("a@example.com", "b@example.com")
    settings.set_text("mail.pool_retries", "1")
    errors = {"a@example.com": SendError("authentication failed: 535", False),
              "b@example.com": SendError("message refused: 451 try later", True)}
    dispatcher, bell, clock, sender = setup(paths, errors)
    row_id = queue(paths)
    dispatcher.turn()
    assert bell.wait(10)
    dispatcher.turn()
    assert bell.wait(10)
    del errors["b@example.com"]  # the server is back
    row = drive(dispatcher, bell, clock, row_id)
    dispatcher.stop()
    bell.close()
    assert (row.state, row.account, row.rounds) == ("sent", "b@example.com", 1)


def test_expired_unaccounted_and_unreadable_rows(paths) -> None:
    dispatcher, bell, clock, sender = setup(paths, {})
    expired = queue(paths, expires_at=START - 1)
    nobody = queue(paths)
    dispatcher.turn()
    assert EmailOutbox.get_by_id(expired).state == "expired"
    row = EmailOutbox.get_by_id(nobody)
    assert (row.state, row.last_error) == ("failed", "no active email account")
    accounts("a@example.com")
    dispatcher.reload()
    broken = queue(paths)
    EmailOutbox.update(body="s1:tampered").where(EmailOutbox.id == broken).execute()
    dispatcher.turn()
    row = EmailOutbox.get_by_id(broken)
    assert row.state == "failed" and row.last_error.startswith("message body unreadable")
    dispatcher.stop()
    bell.close()
    assert sender.calls == []


def test_rows_left_sending_are_queued_again(paths) -> None:
    queue(paths, state="sending")
    queue(paths, state="sent")
    dispatcher = Dispatcher(paths, keys.otp_key(paths))
    assert dispatcher.requeue_in_flight() == 1
    dispatcher.stop()
    assert [r.state for r in EmailOutbox.select().order_by(EmailOutbox.id)] == ["queued", "sent"]
