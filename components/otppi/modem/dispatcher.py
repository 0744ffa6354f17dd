"""The dispatcher: queued SMS rows to free modems, outcomes back to the store.

It runs on the component's main thread, woken by the doorbell (a handler
queued something, a worker finished) and by a short sweep. For each queued
row, in order, it walks the routing tiers and hands the row to the first free
modem of the first tier that has one (round robin within the tier). A row
whose modem failed goes back to the queue with that modem marked as tried,
so the next eligible modem takes it: that is the failover. A row that no
modem may ever take fails at once with 1101; one that waits longer than the
queue timeout for a usable modem fails the same way.

Nothing claimed is left behind: a worker thread that died is started again
and the rows it held are queued again at once, and a row that stays
'sending' past its lease (:data:`LEASE_MARGIN` plus the send timeout per
part, counted from the claim, or from the moment its modem began sending it)
goes back to the queue; the worker checks a row is still its own before it
sends it, so a requeued row is not sent twice.
"""

from __future__ import annotations

import logging
import queue
import time
from datetime import datetime
from typing import Callable
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from .. import doorbell
from ..msisdn import mask
from ..paths import Paths
from ..seal import SealError, unseal
from ..store import outbox
from ..store.db import db
from ..store.models import GeneralSettings, Modem, ModemStatus, SmsOutbox, SmsSettings, TimeSettings
from .inbox import purge_incomplete
from .routing import RoundRobin, tiers
from .userdata import part_count
from .worker import ModemConfig, ModemWorker, SendJob, SendResult

log = logging.getLogger(__name__)

BATCH = 200
#: Seconds a claimed row may stay 'sending' beyond the send timeout of each of its parts before it is
#: queued again: room for the one job a send can wait behind (an interactive call, an inbox read) and
#: a reopen. A worker that began the send extends it from that moment.
LEASE_MARGIN = 60.0
LEASE_CHECK = 5.0  # seconds between two lease checks
PURGE_CHECK = 600.0  # seconds between two looks for multipart messages that will never be complete
RESTART_DELAY, RESTART_MAX_DELAY = 1.0, 60.0  # a worker that keeps dying is started again less often


class Dispatcher:
    def __init__(self, paths: Paths, otp_key: bytes, worker_factory: Callable[..., ModemWorker] = ModemWorker):
        self.paths = paths
        self.otp_key = otp_key
        self.workers: dict[str, ModemWorker] = {}
        self.results: queue.Queue[SendResult] = queue.Queue()
        self.round_robin = RoundRobin()
        self._worker_factory = worker_factory
        self.sms = SmsSettings.load()
        self.general = GeneralSettings.load()
        self._zone = ZoneInfo("UTC")
        self._sent_today: dict[str, tuple[str, int]] = {}
        self._restarts: dict[str, tuple[float, float]] = {}  # name: (next delay, not before)
        self._next_lease_check = 0.0
        self._next_purge = 0.0

    # ---------------------------------------------------------------- workers

    def _wake(self) -> None:
        doorbell.ring(self.paths.doorbell("modem"))

    def _on_result(self, result: SendResult) -> None:
        self.results.put(result)
        self._wake()

    def reload(self) -> None:
        """Settings or modem records changed: re-read them, start, restart or stop workers."""
        self.sms = SmsSettings.load()
        self.general = GeneralSettings.load()
        try:
            self._zone = ZoneInfo(TimeSettings.load().time_zone)
        except (ZoneInfoNotFoundError, ValueError):
            self._zone = ZoneInfo("UTC")
        wanted = {row.name: ModemConfig.from_row(row) for row in Modem.select() if row.active}
        for name, worker in list(self.workers.items()):
            config = wanted.get(name)
            if config is None or config.connection() != worker.config.connection():
                log.info("modem %s %s: stopping its worker", name, "removed or inactive" if config is None
                         else "connection changed")
                worker.stop()
                worker.join(10)
                del self.workers[name]
            else:
                worker.config = config  # routing flags apply at once
                worker.send_timeout = self.sms.send_timeout
        for name, config in wanted.items():
            if name not in self.workers:
                self._start_worker(config)
        with db.atomic():
            ModemStatus.delete().where(ModemStatus.name.not_in(list(wanted) or [""])).execute()

    def _start_worker(self, config: ModemConfig) -> ModemWorker:
        worker = self._worker_factory(config, on_result=self._on_result, on_change=self._wake,
                                      send_timeout=self.sms.send_timeout)
        self.workers[config.name] = worker
        worker.start()
        return worker

    def _restart_dead(self, now: float) -> None:
        """A worker thread that ended on its own (a bug): its rows back to the queue, a new worker."""
        for name, worker in list(self.workers.items()):
            if worker.is_alive() or worker.stopping:
                continue
            delay, not_before = self._restarts.get(name, (RESTART_DELAY, 0.0))
            if now < not_before:
                continue
            log.error("modem %s: its worker stopped unexpectedly: starting it again", name)
            held = list(SmsOutbox.select().where((SmsOutbox.state == "sending") & (SmsOutbox.modem == name)))
            self._requeue(held, f"the worker of modem {name} stopped")
            self._restarts[name] = (min(delay * 2, RESTART_MAX_DELAY), now + delay)
            self._start_worker(worker.config)

    def _lease_ends(self, row: SmsOutbox) -> float:
        worker = self.workers.get(row.modem)
        began = worker.sending_since(row.id) if worker is not None else None
        start = row.updated_at if began is None else time.time() - (time.monotonic() - began)
        return start + self.sms.send_timeout * max(row.parts, 1) + LEASE_MARGIN

    def _expire_leases(self, now: float) -> None:
        """Rows 'sending' past their lease: no outcome will come (a hung modem), queue them again."""
        if now < self._next_lease_check:
            return
        self._next_lease_check = now + LEASE_CHECK
        oldest = now - self.sms.send_timeout - LEASE_MARGIN  # no lease ends sooner than this
        candidates = SmsOutbox.select().where((SmsOutbox.state == "sending") & (SmsOutbox.updated_at < oldest))
        expired = [row for row in candidates if self._lease_ends(row) < now]
        self._requeue(expired, "no outcome from modem {modem} in time: queued again")

    def _requeue(self, rows: list[SmsOutbox], why: str) -> None:
        """Claimed rows whose outcome will never come back to the queue (the modem is not marked tried:
        it failed nothing, and a busy or hung one is not handed rows anyway)."""
        for row in rows:
            cause = why.format(modem=row.modem)
            log.warning("sms %d: %s", row.id, cause)
            with db.atomic():
                if SmsOutbox.update(state="queued", modem="", last_error=cause[:255]).where(
                        (SmsOutbox.id == row.id) & (SmsOutbox.state == "sending")
                        & (SmsOutbox.attempts == row.attempts)).execute():
                    outbox.record_event("sms", source=row.source, modem=row.modem, receiver=row.receiver,
                                        result="retry", cause=cause)

    def _purge_parts(self, now: float) -> None:
        if now >= self._next_purge:
            self._next_purge = now + PURGE_CHECK
            purge_incomplete(now)

    def stop(self) -> None:
        for worker in self.workers.values():
            worker.stop()
        for worker in self.workers.values():
            worker.join(10)
        self.workers.clear()

    # ---------------------------------------------------------------- one turn

    def requeue_in_flight(self) -> int:
        """After a crash, rows left 'sending' go back to the queue (the one in flight may repeat)."""
        with db.atomic():
            return SmsOutbox.update(state="queued").where(SmsOutbox.state == "sending").execute()

    def turn(self, now: float | None = None) -> float:
        """Handle results, expire, assign; return how long the loop may sleep."""
        now = time.time() if now is None else now
        while True:
            try:
                self._handle(self.results.get_nowait())
            except queue.Empty:
                break
        self._restart_dead(now)
        self._expire_leases(now)
        self._purge_parts(now)
        self._release_quarantines(now)
        return self._assign(now)

    def _handle(self, result: SendResult) -> None:
        worker = self.workers.get(result.modem)
        if result.skipped:
            return
        if result.ok:
            row = SmsOutbox.get_or_none(SmsOutbox.id == result.row_id)
            if row is None or row.state in outbox.FINAL:
                log.warning("modem %s sent row %d, which had ended already (%s)", result.modem, result.row_id,
                            row.state if row else "deleted")
                return
            # Sent, even if its lease ran out meanwhile: a modem holding it again finds it sent and skips it.
            with db.atomic():
                SmsOutbox.update(message_refs=",".join(map(str, result.refs)), parts=len(result.refs),
                                 delivery_state="pending" if self.sms.status_report else "").where(
                    SmsOutbox.id == result.row_id).execute()
            # "Monitor SMS Traffic" off: successes leave no event; failures always do (the buzzer).
            outbox.finish(self.paths, SmsOutbox, result.row_id, "sent", modem=result.modem,
                          event=self.sms.monitor_traffic)
            self._count_sent(result.modem)
            return
        log.warning("modem %s failed row %d: %s", result.modem, result.row_id, result.error)
        with db.atomic():
            row = SmsOutbox.get_or_none(SmsOutbox.id == result.row_id)
            if row is None or (row.state, row.modem, row.attempts) != ("sending", result.modem, result.attempt):
                return  # its lease ran out and it went on without this modem
            tried = [t for t in row.tried.split(",") if t] + [result.modem]
            SmsOutbox.update(state="queued", tried=",".join(dict.fromkeys(tried)), last_error=result.error[:255],
                             modem="").where(SmsOutbox.id == row.id).execute()
            outbox.record_event("sms", source=row.source, modem=result.modem, receiver=row.receiver,
                                result="retry", cause=result.error)
        if worker is not None and not result.closed and worker.failures >= self.sms.failures_to_quarantine:
            until = time.time() + self.sms.quarantine_seconds
            log.warning("modem %s failed %d times in a row: resting until %s", result.modem, worker.failures,
                        time.strftime("%H:%M:%S", time.localtime(until)))
            worker.quarantine(until, f"{worker.failures} failures in a row: {result.error}"[:255])

    def _release_quarantines(self, now: float) -> None:
        for worker in self.workers.values():
            if worker.quarantined_until and worker.quarantined_until <= now:
                worker.release()

    # ---------------------------------------------------------------- pacing and caps

    def _today(self) -> str:
        return datetime.now(self._zone).strftime("%Y-%m-%d")

    def _count_sent(self, name: str) -> None:
        day = self._today()
        previous_day, count = self._sent_today.get(name, (day, 0))
        count = count + 1 if previous_day == day else 1
        self._sent_today[name] = (day, count)
        with db.atomic():
            ModemStatus.update(sent_day=day, sent_today=count, last_sent_at=time.time()).where(
                ModemStatus.name == name).execute()

    def _under_cap(self, name: str) -> bool:
        if not self.sms.daily_cap:
            return True
        day, count = self._sent_today.get(name, ("", 0))
        if day != self._today():
            row = ModemStatus.get_or_none(ModemStatus.name == name)
            count = row.sent_today if row is not None and row.sent_day == self._today() else 0
            self._sent_today[name] = (self._today(), count)
        return count < self.sms.daily_cap

    def _paced_until(self, worker: ModemWorker) -> float:
        return worker.last_sent_at + self.sms.min_interval_ms / 1000.0

    # ---------------------------------------------------------------- assignment

    def _assign(self, now: float) -> float:
        sleep = 1.0
        all_routes = [ModemConfig.from_row(m).route() for m in Modem.select()]
        free = {name for name, w in self.workers.items() if w.free}
        queued = list(SmsOutbox.select().where(SmsOutbox.state == "queued").order_by(SmsOutbox.id).limit(BATCH))
        for row in queued:
            if self._expired(row, now):
                continue
            manual = row.kind == "manual"
            route_tiers = tiers(row.receiver, self.sms.prefix_length, all_routes, manual=manual)
            if manual and row.via:
                route_tiers = [[row.via]] if any(r.name == row.via and r.active for r in all_routes) else []
            tried = set(filter(None, row.tried.split(",")))
            remaining = [[n for n in tier if n not in tried] for tier in route_tiers]
            remaining = [tier for tier in remaining if tier]
            if not remaining:
                why = row.last_error if tried else "no active modem may send to this number"
                outbox.finish(self.paths, SmsOutbox, row.id, "failed", error=why or "every modem failed")
                continue
            if row.created_at + self.sms.queue_timeout <= now:
                outbox.finish(self.paths, SmsOutbox, row.id, "failed",
                              error=f"no modem could take it within {self.sms.queue_timeout} s")
                continue
            if not free:
                continue
            chosen, sleep = self._choose(remaining, free, now, sleep)
            if chosen is None:
                continue
            if self._dispatch(row, self.workers[chosen]):
                free.discard(chosen)
        return sleep

    def _choose(self, remaining: list[list[str]], free: set[str], now: float, sleep: float) -> tuple[str | None, float]:
        for tier in remaining:
            # A modem running an interactive call (a USSD code) takes a send only after it: others first.
            for name in sorted(self.round_robin.order(tier), key=lambda n: n in free and self.workers[n].in_call):
                if name not in free or not self._under_cap(name):
                    continue
                ready_at = self._paced_until(self.workers[name])
                if ready_at > now:
                    sleep = min(sleep, ready_at - now)
                    continue
                self.round_robin.used(tier, name)
                return name, sleep
            # Busy or paced modems of a better tier are worth waiting for; down or capped ones are not.
            if any(n in self.workers and self.workers[n].state == "ready" and self._under_cap(n) for n in tier):
                return None, sleep
        return None, sleep

    def _expired(self, row: SmsOutbox, now: float) -> bool:
        if row.expires_at is not None and row.expires_at <= now and self.general.drop_expire_otp:
            outbox.finish(self.paths, SmsOutbox, row.id, "expired", error="expired before a modem could send it")
            return True
        return False

    def _dispatch(self, row: SmsOutbox, worker: ModemWorker) -> bool:
        try:
            text = unseal(self.otp_key, row.body)
        except (SealError, TypeError) as exc:
            outbox.finish(self.paths, SmsOutbox, row.id, "failed", error=f"message body unreadable: {exc}")
            return False
        try:
            parts = part_count(text)
        except ValueError:
            parts = 1  # too long for any modem: the send fails and says so
        if not outbox.claim(SmsOutbox, row.id, modem=worker.config.name, parts=parts):
            return False
        if self.sms.log_outgoing:  # "Log Outgoing SMS"
            log.info("sms %d to %s via %s", row.id, mask(row.receiver), worker.config.name)
        worker.submit(SendJob(row.id, row.receiver, text, self.sms.status_report, worker.next_concat_reference(),
                              attempt=row.attempts + 1))
        return True
