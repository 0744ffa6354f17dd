"""The mail dispatcher: queued email rows to SMTP accounts, outcomes back to the store.

It runs on the component's main thread, woken by the doorbell (a handler
queued something, a send finished) and by a short sweep; the SMTP
conversations run on a few sender threads, so a slow server never stalls the
loop or its watchdog. Each queued row goes to the next account in turn
(:class:`~otppi.mailer.pool.Pool`). An account that fails it is marked as
tried on the row and the next account takes it: that is the failover. When
every account has failed it, the message fails (1102), unless one of them
failed for a reason that may pass (a server down, a 4xx reply): then the
whole pool is tried again after a delay that doubles each time, up to
``mail.pool_retries`` times.
"""

from __future__ import annotations

import logging
import queue
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from email.message import EmailMessage
from typing import Callable
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from .. import doorbell
from ..msisdn import mask
from ..paths import Paths
from ..seal import SealError, unseal
from ..store import outbox
from ..store.db import db
from ..store.models import EmailAccount, EmailOutbox, GeneralSettings, MailSettings, TimeSettings
from . import smtp
from .compose import ComposeError, compose, plain_address
from .pool import Account, Pool

log = logging.getLogger(__name__)

BATCH = 200
#: SMTP conversations at once; a Pi sends a few thousand mails a day, not a second.
PARALLEL = 4
SWEEP = 2.0

Sender = Callable[[Account, EmailMessage, str], None]


@dataclass
class Result:
    row_id: int
    account: Account
    error: smtp.SendError | None


def subject_for(kind: str, requested: str, mail: MailSettings, device_name: str) -> str:
    """The request's subject, else the mail settings' one for this kind, else one from the device name."""
    if requested:
        return requested
    if kind == "otp":
        return mail.otp_subject or f"{device_name} one-time password"
    if kind == "reset":
        return mail.reset_subject or f"{device_name} password reset"
    return mail.default_subject or device_name


class Dispatcher:
    def __init__(self, paths: Paths, otp_key: bytes, *, sender: Sender | None = None,
                 clock: Callable[[], float] = time.time, parallel: int = PARALLEL):
        self.paths = paths
        self.otp_key = otp_key
        self.clock = clock
        self.pool = Pool(clock=clock)
        self.mail = MailSettings.load()
        self.general = GeneralSettings.load()
        self.results: queue.Queue[Result] = queue.Queue()
        self.parallel = parallel
        self.in_flight = 0
        self._sender = sender
        self._executor = ThreadPoolExecutor(max_workers=parallel, thread_name_prefix="smtp")

    # ---------------------------------------------------------------- set-up

    def reload(self) -> None:
        """Settings or accounts changed: re-read them."""
        self.mail = MailSettings.load()
        self.general = GeneralSettings.load()
        try:
            zone = ZoneInfo(TimeSettings.load().time_zone)
        except (ZoneInfoNotFoundError, ValueError):
            zone = ZoneInfo("UTC")
        self.pool.load(EmailAccount.select(), zone)

    def requeue_in_flight(self) -> int:
        """After a crash, rows left 'sending' go back to the queue (the one in flight may repeat)."""
        with db.atomic():
            return EmailOutbox.update(state="queued").where(EmailOutbox.state == "sending").execute()

    def stop(self) -> None:
        """Let conversations under way end (each is bounded by the timeout); start no more."""
        self._executor.shutdown(wait=True, cancel_futures=True)
        while not self.results.empty():
            self._handle(self.results.get_nowait())

    # ---------------------------------------------------------------- one turn

    def turn(self) -> float:
        """Handle results, expire, assign; return how long the loop may sleep."""
        while True:
            try:
                self._handle(self.results.get_nowait())
            except queue.Empty:
                break
        return self._assign(self.clock())

    def _handle(self, result: Result) -> None:
        self.in_flight -= 1
        account = result.account
        if result.error is None:
            counted = self.pool.done(account.id, sent=True)
            if counted is not None:
                with db.atomic():
                    EmailAccount.update(quota_day=counted[0], sent_today=counted[1]).where(
                        EmailAccount.id == account.id).execute()
            outbox.finish(self.paths, EmailOutbox, result.row_id, "sent", modem=account.sender)
            return
        self.pool.done(account.id, sent=False)
        self._account_failed(result.row_id, account, result.error)

    def _account_failed(self, row_id: int, account: Account, error: smtp.SendError) -> None:
        """Back to the queue with *account* marked as tried, so the next account takes it."""
        log.warning("email %d: account %s failed: %s", row_id, account.sender, error.reason)
        with db.atomic():
            row = EmailOutbox.get_or_none(EmailOutbox.id == row_id)
            if row is None or row.state != "sending":
                return
            tried = [t for t in row.tried.split(",") if t] + [str(account.id)]
            EmailOutbox.update(state="queued", tried=",".join(dict.fromkeys(tried)),
                               retryable=row.retryable or error.transient,
                               last_error=f"{account.sender}: {error.reason}"[:255], updated_at=time.time()).where(
                EmailOutbox.id == row.id).execute()
            outbox.record_event("email", source=row.source, modem=account.sender, receiver=row.receiver,
                                result="retry", cause=error.reason)

    # ---------------------------------------------------------------- assignment

    def _assign(self, now: float) -> float:
        sleep = SWEEP
        queued = list(EmailOutbox.select().where(EmailOutbox.state == "queued").order_by(EmailOutbox.id)
                      .limit(BATCH))
        for row in queued:
            if self._expired(row, now):
                continue
            if row.retry_at is not None and row.retry_at > now:
                sleep = min(sleep, row.retry_at - now)
                continue
            if not self.pool.accounts:
                self._fail(row, "no active email account")
                continue
            if self.in_flight >= self.parallel:
                continue
            retry_in = self._offer(row)
            if retry_in is not None:
                sleep = min(sleep, retry_in)
        return max(sleep, 0.01)

    def _offer(self, row: EmailOutbox) -> float | None:
        """Hand *row* to the next account; how soon the loop should look at it again (None: no need)."""
        try:
            receiver = plain_address(row.receiver, "receiver")
        except ComposeError as exc:
            self._fail(row, str(exc))
            return None
        tried = {int(t) for t in row.tried.split(",") if t}
        account = self.pool.choose(tried)
        if account is None:
            return self._no_account(row, tried)
        try:
            text = unseal(self.otp_key, row.body)
        except (SealError, TypeError) as exc:
            self.pool.done(account.id, sent=False)
            self._fail(row, f"message body unreadable: {exc}")
            return None
        if not outbox.claim(EmailOutbox, row.id, account=account.sender):
            self.pool.done(account.id, sent=False)
            return None
        try:
            message = self._compose(row, account, receiver, text)
        except ComposeError as exc:  # the account's sender address: that account fails it
            self.pool.done(account.id, sent=False)
            self._account_failed(row.id, account, smtp.SendError(str(exc), transient=False))
            return 0.0
        log.info("email %d (%s) to %s via %s", row.id, row.kind, mask(receiver), account.sender)
        self.in_flight += 1
        self._executor.submit(self._converse, row.id, account, message, receiver)
        return None

    def _compose(self, row: EmailOutbox, account: Account, receiver: str, text: str) -> EmailMessage:
        device = self.general.device_name
        return compose(sender=account.sender, from_name=self.mail.from_name or device, receiver=receiver,
                       subject=subject_for(row.kind, row.subject, self.mail, device), text=text,
                       now=self.clock(), zone=self.pool.zone)

    def _converse(self, row_id: int, account: Account, message: EmailMessage, receiver: str) -> None:
        """On a sender thread: one SMTP conversation, its result back to the main thread."""
        error = None
        try:
            if self._sender is not None:
                self._sender(account, message, receiver)
            else:
                smtp.send(account, message, receiver, timeout=self.mail.timeout)
        except smtp.SendError as exc:
            error = exc
        except Exception as exc:  # a bug must not lose the row: it fails over like any error
            log.exception("email %d: unexpected error through %s", row_id, account.sender)
            error = smtp.SendError(f"unexpected error: {type(exc).__name__}", transient=False)
        self.results.put(Result(row_id, account, error))
        doorbell.ring(self.paths.doorbell("mailer"))

    # ---------------------------------------------------------------- endings

    def _no_account(self, row: EmailOutbox, tried: set[int]) -> float | None:
        """No account may take the row now: every one failed it, or the rest have used their quota.

        Returns the seconds until the pool is tried again, or None when the row failed.
        """
        current = {a.id for a in self.pool.accounts}
        if not tried & current:
            self._fail(row, "every email account has reached its daily quota (they rest until midnight, "
                            f"{self.pool.zone.key})")
            return None
        if row.retryable and row.rounds < self.mail.pool_retries:
            delay = self.mail.retry_delay * 2 ** row.rounds
            log.warning("email %d: every account failed, trying the pool again in %.1f s (retry %d of %d)",
                        row.id, delay, row.rounds + 1, self.mail.pool_retries)
            with db.atomic():
                EmailOutbox.update(tried="", retryable=False, rounds=row.rounds + 1,
                                   retry_at=self.clock() + delay).where(EmailOutbox.id == row.id).execute()
            return delay
        self._fail(row, row.last_error or "every email account failed")
        return None

    def _fail(self, row: EmailOutbox, error: str) -> None:
        log.warning("email %d to %s failed: %s", row.id, mask(row.receiver), error)
        outbox.finish(self.paths, EmailOutbox, row.id, "failed", error=error, modem=row.account)

    def _expired(self, row: EmailOutbox, now: float) -> bool:
        if row.expires_at is not None and row.expires_at <= now and self.general.drop_expire_otp:
            outbox.finish(self.paths, EmailOutbox, row.id, "expired", error="expired before it could be sent")
            return True
        return False
